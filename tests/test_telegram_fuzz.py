"""Hostile Telegram updates that carry the right secret (issue 17 §6): whatever their shape,
they are answered without a server error and without a Rasa turn unless they are a well-formed
message the channel reads.

``read_update`` is fuzzed with hypothesis (valid updates with one part replaced by any JSON
value, or removed); a sample of the malformed shapes the issue names goes through the real
channel over HTTP. ``benchmarks/fuzz_webhooks.py`` runs long, over every public webhook.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Bot

from channels.telegram import Incoming, RequestError, read_update
from tests.test_telegram_channel import CHAT_ID, callback, fake, message, served, update  # noqa: F401

BOT = Bot("123456:ABCDEFGHIJKLmnopqrstuvwxyz")
KINDS = {"text", "command", "location", "callback", "media", "ignored"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def bases() -> list[dict]:
    now = int(time.time())
    text = {"update_id": 1, "message": {"message_id": 2, "date": now, "text": "hello",
            "chat": {"id": CHAT_ID, "type": "private"}, "from": {"id": CHAT_ID,
            "is_bot": False, "first_name": "Zubeyda"}}}
    edited = {"update_id": 1, "edited_message": copy.deepcopy(text["message"])}
    location = copy.deepcopy(text)
    del location["message"]["text"]
    location["message"]["location"] = {"latitude": 11.8, "longitude": 13.1}
    photo = copy.deepcopy(text)
    del photo["message"]["text"]
    photo["message"]["photo"] = [{"file_id": "x", "file_unique_id": "y", "width": 1,
                                  "height": 1}]
    pressed = {"update_id": 1, "callback_query": {"id": "cb1", "chat_instance": "42",
               "data": "/menu", "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Z"},
               "message": copy.deepcopy(text["message"])}}
    return [text, edited, location, photo, pressed]


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a part of ``value`` (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, prefix + (index,))
    return found


@st.composite
def hostile_updates(draw) -> Any:
    body = copy.deepcopy(draw(st.sampled_from(bases())))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(body)))
        if not path:
            return draw(json_values)  # the whole body replaced
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
        if "update_id" not in body:
            body["update_id"] = 7  # keep most bodies past the first check
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_updates())
def test_any_update_is_read_or_refused_with_a_clear_error(body):
    try:
        incoming = read_update(body, BOT)
    except RequestError as exc:
        assert str(exc)  # a message that says what is wrong
        return
    if incoming is None:
        return
    assert isinstance(incoming, Incoming) and incoming.kind in KINDS
    assert isinstance(incoming.chat_id, int) and not isinstance(incoming.chat_id, bool)
    assert isinstance(incoming.text, str) and isinstance(incoming.typed, str)


MALFORMED = [
    lambda: update(message={**message("hi"), "text": 12345}),
    lambda: update(message={**message("hi"), "text": ["hi"]}),
    lambda: update(message={**message("hi"), "text": {"nested": {"deep": [1, 2]}}}),
    lambda: update(message={**message("hi"), "chat": None}),
    lambda: update(message={k: v for k, v in message("hi").items() if k != "chat"}),
    lambda: update(message={**message("hi"), "chat": {"id": "abc", "type": "private"}}),
    lambda: update(message={**message("hi"), "date": None}),
    lambda: update(message={**message(), "location": {"latitude": "north", "longitude": 1}}),
    lambda: update(message={**message(), "location": {"latitude": 1e308, "longitude": 1}}),
    lambda: update(message=[1, 2, 3]),
    lambda: {**callback("/menu"), "callback_query": {**callback("/menu")["callback_query"],
                                                    "data": {"x": 1}}},
    lambda: {**callback("/menu"), "callback_query": {**callback("/menu")["callback_query"],
                                                    "message": {"chat": None}}},
]


@pytest.mark.parametrize("make", MALFORMED)
async def test_a_malformed_update_with_the_right_secret_is_refused_without_a_turn(served, make):
    status, answer = await served.post(make())
    assert status == 400 and answer["error"]
    await served.post(update(message=message("hello")))  # the channel still answers
    assert served.rasa.texts == ["hello"]


async def test_text_that_is_not_unicode_is_refused_without_a_turn(served):
    """JSON allows a lone surrogate ("\\ud800"), which no UTF-8 text can hold."""
    body = ('{"update_id": 9, "message": {"message_id": 1, "date": 1, "text": "\\ud800 hi", '
            '"chat": {"id": %d, "type": "private"}}}' % CHAT_ID).encode()
    status, answer = await served.post(body, raw=True)
    assert status == 400 and answer["error"]
    assert served.rasa.texts == []
