"""A quick exit or "forget me" on Telegram also removes the chat's recent messages, both sides,
from the person's phone, with the Bot API's deleteMessages (Bot API 7.0).

What Telegram allows (the Bot API documentation, quoted in ``tests.utils.fake_telegram``):
deleteMessage "A message can only be deleted if it was sent less than 48 hours ago.", "Bots can
delete outgoing messages in private chats, groups, and supergroups.", "Bots can delete incoming
messages in private chats."; deleteMessages "Use this method to delete multiple messages
simultaneously. If some of the specified messages can't be found, they are skipped.", its
``message_ids`` "A JSON-serialized list of 1-100 identifiers of messages to delete". The fake
Bot API follows those rules with a clock the tests move; so does the channel.

Why the reply to the exit stays: TDLib names the bot's description "The text shown in the chat
with the bot if the chat is empty" (``botInfo.description``): a chat emptied of every message
would show what the bot is for; the neutral "Ok." (or the forget-me confirmation, which the
person must be able to read) shows less.

Rasa is a stub, as in ``tests/test_telegram_channel.py``, that erases the conversation as the
tracker store does when it saves a quick exit or "forget me" (``bot.privacy.erasure.erase``,
after the turn's replies were collected); ``tests/test_telegram_process.py`` goes the whole way
with the trained model and the real tracker store.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from cryptography.fernet import Fernet

from bot.catalog import load_catalog
from bot.privacy import erasure
from bot.privacy.routes import Route
from channels.telegram import KEPT_MESSAGES
from channels.telegram_api import (
    DELETE_MARGIN_SECONDS, DELETE_WINDOW_SECONDS, MAX_DELETE_IDS, SendError, TelegramConfig,
    TelegramSender, deletable,
)
from tests.test_telegram_channel import SECRET, Served, serving, update
from tests.utils.fake_telegram import FakeTelegram

CATALOG = load_catalog()
CHAT_ID = 535353  # short enough that no identifier pattern of the log scrubber would hide it
FIRST_ID = 7_000_001  # message ids no log line could hold by chance
HOUR = 3600
QUICK_EXIT, FORGET_ME = "/exit", "/delete"
ERASING = {"/quick_exit": CATALOG.texts["en"]["utter_quick_exit"],
           "/forget_me": CATALOG.render("utter_forget_me_done", "en", "telegram")["text"]}


class ErasingRasa:
    """Answers every message with two texts (the second with buttons); a quick exit or forget
    me gets its one reply and the conversation is erased, as the tracker store does when it
    saves that turn."""

    def __init__(self) -> None:
        self.received = []
        self.erasures: list[list[str]] = []  # the erasers that failed, per erasure

    async def __call__(self, message) -> None:
        self.received.append(message)
        if message.text in ERASING:
            await message.output_channel.send_response(
                message.sender_id, {"text": ERASING[message.text], "metadata": {"language": "en"}})
            self.erasures.append(await erasure.erase(message.sender_id))
            return
        for reply in ({"text": f"About: {message.text}", "metadata": {"language": "en"}},
                      {"text": "What next?", "buttons": [{"title": "Menu", "payload": "/menu"}]}):
            await message.output_channel.send_response(message.sender_id, dict(reply))

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.received]


class Clock:
    """One clock for the channel and the fake Bot API, moved by the tests."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += hours * HOUR


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    server = FakeTelegram(clock=clock, first_message_id=FIRST_ID).start()
    yield server
    server.stop()


@pytest.fixture
async def served(fake, clock):
    async with serving(fake, ErasingRasa(), idle_seconds=72 * HOUR, clock=clock) as served:
        yield served
    assert served.channel._eraser not in erasure.registered()  # gone when the server stopped


async def say(served: Served, text: str = None, **extra) -> int:
    """The person sends a message (kept in the fake's chat); returns its id once the bot's
    replies were sent."""
    message = served.fake.incoming(CHAT_ID, text, **extra)
    status, _ = await served.post(update(message=message))
    assert status == 200
    await served.settle()
    return message["message_id"]


def conversation(served: Served) -> str:
    return served.channel.gateway.conversation_id(str(CHAT_ID))


async def route_of(served: Served):
    return await served.channel.gateway.routes.get(conversation(served))


def deleted_batches(fake: FakeTelegram) -> list[list[int]]:
    return [c.params["message_ids"] for c in fake.requests("deleteMessages")]


# -- both sides, both ways out ----------------------------------------------------------------

@pytest.mark.parametrize("command, payload", [(QUICK_EXIT, "/quick_exit"), (FORGET_ME, "/forget_me")])
async def test_leaving_deletes_both_sides_of_the_chat_and_only_the_reply_stays(
        served, command, payload):
    fake = served.fake
    await say(served, "the agency kept my passport")
    await say(served, photo=[{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}])
    await say(served, location={"latitude": 11.85, "longitude": 13.16})
    before = fake.visible(CHAT_ID)
    assert len(before) == 3 + 2 + 1 + 2  # the person's 3, the bot's 2 + 1 (to the photo) + 2
    assert [m for m, _ in (await route_of(served)).messages] == before

    exit_id = await say(served, command)

    assert served.rasa.texts[-1] == payload and served.rasa.erasures == [[]]
    assert deleted_batches(fake) == [before + [exit_id]]  # the bot's and the person's
    reply = fake.sent()[-1]
    assert reply["text"] == ERASING[payload]
    left = fake.visible(CHAT_ID)
    assert len(left) == 1 and left[0] > exit_id  # only the reply is left
    methods = [c.method for c in fake.requests() if c.method in ("deleteMessages", "sendMessage")]
    assert methods[-2:] == ["deleteMessages", "sendMessage"]  # the chat is cleared first
    assert await route_of(served) is None  # erased, and the reply's id is kept nowhere
    assert served.channel._erasing == {}


async def test_a_reply_still_being_sent_when_the_person_leaves_is_deleted_too(served):
    served.fake.delay_seconds = 0.4  # every sendMessage answer is slow
    first = served.fake.incoming(CHAT_ID, "hello")
    await served.post(update(message=first))  # its two replies are on their way
    exit_id = await say(served, QUICK_EXIT)
    deleted = sorted(i for batch in deleted_batches(served.fake) for i in batch)
    left = served.fake.visible(CHAT_ID)
    assert len(left) == 1 and served.fake.sent()[-1]["text"] == ERASING["/quick_exit"]
    everything = list(range(FIRST_ID, FIRST_ID + 5))  # hello, its 2 replies, /exit, "Ok."
    assert deleted == [i for i in everything if i not in left]
    assert first["message_id"] in deleted and exit_id in deleted


async def test_a_caseworkers_pushed_message_is_deleted_too(served):
    await say(served, "hello")
    output = served.channel.get_output_channel()
    await output.send_response(conversation(served), {"text": "A caseworker writes"})
    await say(served, QUICK_EXIT)
    assert len(served.fake.visible(CHAT_ID)) == 1


# -- Telegram's limits ------------------------------------------------------------------------

@pytest.mark.parametrize("later, in_route", [
    (1.5, False),  # 48.5 hours old at the exit: Telegram would refuse them; the route dropped them
    (58 / 60, True),  # 47 h 58 min: still in the route, but within the margin: left out
], ids=["48h30", "47h58"])
async def test_messages_sent_48_hours_ago_or_more_are_not_sent_for_deletion(
        served, clock, later, in_route):
    """Telegram: "A message can only be deleted if it was sent less than 48 hours ago"."""
    await say(served, "two days ago")
    old = served.fake.visible(CHAT_ID)
    clock.advance(47)
    await say(served, "yesterday")
    recent = [i for i in served.fake.visible(CHAT_ID) if i not in old]
    clock.advance(later)
    exit_id = await say(served, QUICK_EXIT)
    assert deleted_batches(served.fake) == [recent + [exit_id]]
    assert [c.answered for c in served.fake.requests("deleteMessages")] == [200]
    assert served.fake.visible(CHAT_ID)[:len(old)] == old  # the person's to delete


async def test_the_route_forgets_ids_past_48_hours_and_keeps_at_most_the_newest(served, clock):
    await say(served, "first")
    clock.advance(47.9)
    await say(served, "later")
    assert [m for m, _ in (await route_of(served)).messages] == served.fake.visible(CHAT_ID)
    clock.advance(0.2)  # the first three are 48.1 hours old
    await say(served, "again")
    assert [m for m, _ in (await route_of(served)).messages] == served.fake.visible(CHAT_ID)[3:]
    many = [(FIRST_ID + 10_000 + n, int(clock.now)) for n in range(KEPT_MESSAGES + 20)]
    await served.channel.note_messages(conversation(served), many)
    assert (await route_of(served)).messages == tuple(many[-KEPT_MESSAGES:])


def test_ids_within_the_margin_of_48_hours_are_left_out():
    now = 1_900_000_000
    edge = now - DELETE_WINDOW_SECONDS + DELETE_MARGIN_SECONDS
    assert deletable([(1, edge - 1), (2, edge), (3, now)], now) == [2, 3]
    assert DELETE_WINDOW_SECONDS == 48 * HOUR and 0 < DELETE_MARGIN_SECONDS <= 600


async def test_more_than_100_ids_go_in_calls_of_at_most_100(served):
    fake = served.fake
    await say(served, "hello")
    extra = [fake.incoming(CHAT_ID, f"line {n}") for n in range(230)]  # as if typed earlier
    await served.channel.note_messages(conversation(served),
                                       [(m["message_id"], m["date"]) for m in extra])
    everything = fake.visible(CHAT_ID)
    exit_id = await say(served, QUICK_EXIT)
    batches = deleted_batches(fake)
    assert [len(b) for b in batches] == [100, 100, 34] and MAX_DELETE_IDS == 100
    assert sorted(i for b in batches for i in b) == everything + [exit_id]
    assert len(fake.visible(CHAT_ID)) == 1


async def test_the_fake_bot_api_keeps_telegrams_rules(fake, clock):
    """So that the channel's tests mean something: the fake refuses what Telegram refuses."""
    sender = TelegramSender(TelegramConfig(fake.token, SECRET, api_url=fake.api_url),
                            base_delay=0.01, max_delay=0.05)
    try:
        old = fake.incoming(CHAT_ID, "old")["message_id"]
        clock.advance(48)
        new = fake.incoming(CHAT_ID, "new")["message_id"]
        assert await sender.delete_messages(CHAT_ID, [old, new]) == (0, 1)  # 400, nothing deleted
        assert fake.requests("deleteMessages")[-1].answered == 400
        assert await sender.delete_messages(CHAT_ID, [new, 999]) == (2, 0)  # unknown id skipped
        assert fake.visible(CHAT_ID) == [old]
        with pytest.raises(SendError):
            await sender.call("deleteMessages",
                              lambda bot: bot.delete_messages(CHAT_ID, list(range(1, 102))))
        assert fake.requests("deleteMessages")[-1].answered == 400
    finally:
        await sender.close()


# -- failures never stop the erasure ----------------------------------------------------------

@pytest.mark.parametrize("behaviours", [
    [(400, "Bad Request: message can't be deleted")],
    [403],
    [500, 500, 500, 500],
    ["timeout", "timeout", "timeout", "timeout"],
])
async def test_a_failed_deletion_still_erases_and_logs_nothing_identifying(
        served, behaviours, caplog):
    caplog.set_level(logging.DEBUG)
    await say(served, "my employer in Sabha")
    served.fake.script = list(behaviours)
    exit_id = await say(served, QUICK_EXIT)
    assert served.rasa.erasures == [[]]  # every eraser ran and none failed
    assert await route_of(served) is None
    assert served.fake.sent()[-1]["text"] == ERASING["/quick_exit"]  # the reply still goes
    assert exit_id in served.fake.visible(CHAT_ID)  # not deleted: the person's to delete
    assert "1 calls refused or failed" in caplog.text
    for secret in (str(CHAT_ID), str(FIRST_ID)[:5], "Sabha"):
        assert secret not in caplog.text, secret


async def test_a_broken_route_store_still_lets_the_other_erasers_run(served, monkeypatch):
    await say(served, "hello")

    async def broken(_):
        raise ConnectionError("redis down")

    monkeypatch.setattr(served.channel.gateway.routes, "get", broken)
    failed = await erasure.erase(conversation(served))
    assert failed == [served.channel._eraser]  # named; the routes' own eraser still ran
    monkeypatch.undo()
    assert await route_of(served) is None


# -- what is kept, where -----------------------------------------------------------------------

async def test_the_ids_are_kept_only_encrypted_in_the_route_never_in_logs_or_rasa(served, caplog):
    caplog.set_level(logging.DEBUG)
    await say(served, "hello")
    await say(served, "again")
    ids = served.fake.visible(CHAT_ID)
    token = served.channel.gateway.routes._items[conversation(served)][1]
    for message_id in ids:
        assert str(message_id).encode() not in token
    plain = json.loads(Fernet(served.key.encode()).decrypt(token))
    assert [m for m, _ in plain["t"]] == ids  # there, under the route key
    assert str(ids[0]) not in repr(await route_of(served))
    assert all(not m.metadata for m in served.rasa.received)  # Rasa (and its tracker) get none
    await say(served, QUICK_EXIT)
    assert str(FIRST_ID)[:5] not in caplog.text and str(CHAT_ID) not in caplog.text


async def test_sms_and_web_chat_conversations_are_not_touched(served):
    routes = served.channel.gateway.routes
    await routes.put("c-sms", Route("sms", "+999 555 0100").with_messages([(5, int(time.time()))],
                                                                          0, 10))
    await routes.put("c-web", Route("webchat", "session-1"))
    for conversation_id in ("c-sms", "c-web"):
        assert await erasure.erase(conversation_id) == []
        assert await routes.get(conversation_id) is None
    await served.settle()
    assert served.fake.requests("deleteMessages") == []


async def test_a_conversation_deleted_for_idleness_leaves_the_chat_alone(served):
    await say(served, "hello")
    assert await erasure.erase(conversation(served), expiry=True) == []
    await served.settle()
    assert await route_of(served) is None
    assert served.fake.requests("deleteMessages") == [] and len(served.fake.visible(CHAT_ID)) == 3


# -- what the person is told --------------------------------------------------------------------

@pytest.mark.parametrize("language, two_days", [
    ("en", "last two days"), ("fr", "deux derniers jours"), ("ar", "آخر يومين"),
    ("es", "dos últimos días"),
])
def test_forget_me_on_telegram_says_older_messages_are_the_persons_to_delete(language, two_days):
    """The Bot API: "A message can only be deleted if it was sent less than 48 hours ago"."""
    text = CATALOG.render("utter_forget_me_done", language, "telegram")["text"]
    words = CATALOG.channel_words(language, "telegram")["clear_phone"]
    assert words in text and two_days in words and "Telegram" in words or language == "ar"
    assert DELETE_WINDOW_SECONDS == 48 * HOUR
    if language == "ar":
        assert "تيليغرام" in words and two_days in words


async def test_the_erasers_order_lets_the_channel_read_the_route_first(served):
    names = erasure.registered()
    routes_name = next(n for n in names if str(id(served.channel.gateway.routes)) in n)
    assert names.index(served.channel._eraser) < names.index(routes_name)
