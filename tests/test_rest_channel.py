"""The project's JSON channel (channels/rest.py): bad requests, and the messages pushed to a
conversation (a caseworker's replies) held for the client's poll or its next message.

The channel's blueprint runs in a Sanic app called over ASGI; Rasa's place is a stub.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from cryptography.fernet import Fernet, MultiFernet
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.privacy import erasure
from bot.privacy.keys import Secrets
from bot.privacy.logs import forget_sensitive
from bot.privacy.routes import MemoryRouteCache
from channels.gateway import MAX_HELD, Gateway
from channels.rest import HelplineRestInput
from tests.utils.sanic_asgi import asgi_client

PREFIX = "/webhooks/helpline"
SENDER = "rest-client-7"


class Stub:
    """Rasa's place: answers every message with a question and two buttons."""

    def __init__(self) -> None:
        self.seen: list[UserMessage] = []

    async def __call__(self, message: UserMessage) -> None:
        self.seen.append(message)
        await message.output_channel.send_response(message.sender_id, {
            "text": "Shall we go on?",
            "buttons": [{"title": "Yes", "payload": "/affirm"},
                        {"title": "No", "payload": "/deny"}],
        })


@pytest.fixture
def gateway():
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=60)
    yield Gateway("helpline", Secrets(pseudonym_key=b"k" * 32, route_keys=(key,)), routes)
    routes.close()
    forget_sensitive()


@pytest.fixture
def stub():
    return Stub()


@pytest.fixture
async def client(gateway, stub):
    app = Sanic(f"rest_test_{uuid.uuid4().hex[:12]}")
    app.blueprint(HelplineRestInput(gateway).blueprint(stub), url_prefix=PREFIX)
    async with asgi_client(app) as http:
        yield http


async def say(client, text: str, sender: str = SENDER) -> list[dict]:
    reply = await client.post(f"{PREFIX}/webhook", json={"sender": sender, "message": text})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def poll(client, sender: str = SENDER) -> list[dict]:
    reply = await client.post(f"{PREFIX}/poll", json={"sender": sender})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_pushed_messages_wait_encrypted_for_the_poll_once_each(client, gateway, stub):
    push = HelplineRestInput(gateway).get_output_channel()
    await say(client, "hello")
    conversation = gateway.conversation_id(SENDER)
    assert await poll(client) == []
    await push.send_response(conversation, {
        "text": "Hello, I am Amina from the team.", "recipient_id": conversation,
        "buttons": [{"title": "Reply", "payload": "/affirm"}], "metadata": {"language": "en"}})
    await push.send_text_message(conversation, "Are you safe now?")
    assert b"Amina" not in gateway.routes._items[conversation][1]  # encrypted in the route
    assert await poll(client) == [
        {"text": "Hello, I am Amina from the team.",
         "buttons": [{"title": "Reply", "payload": "/affirm"}]},
        {"text": "Are you safe now?"}]
    assert await poll(client) == []
    # not polled: the next message's answer brings them first, once
    await push.send_text_message(conversation, "Still there?")
    answer = await say(client, "yes")
    assert [m["text"] for m in answer] == ["Still there?", "Shall we go on?"]
    assert await poll(client) == []
    # a client that never asks keeps only the latest MAX_HELD
    for n in range(MAX_HELD + 3):
        await push.send_text_message(conversation, f"m{n}")
    kept = await poll(client)
    assert len(kept) == MAX_HELD and kept[-1]["text"] == f"m{MAX_HELD + 2}"
    # pushed messages never disturb the menu: "2" is still the last menu's second option
    await say(client, "2")
    assert stub.seen[-1].text == "/deny"


async def test_a_message_pushed_during_a_turn_is_kept_for_the_next_poll(gateway):
    push = HelplineRestInput(gateway).get_output_channel()

    class PushedMeanwhile(Stub):
        async def __call__(self, message: UserMessage) -> None:
            await push.send_text_message(message.sender_id, "Written while you wrote.")
            await super().__call__(message)

    app = Sanic(f"rest_test_{uuid.uuid4().hex[:12]}")
    app.blueprint(HelplineRestInput(gateway).blueprint(PushedMeanwhile()), url_prefix=PREFIX)
    async with asgi_client(app) as client:
        assert [m["text"] for m in await say(client, "hello")] == ["Shall we go on?"]
        assert [m["text"] for m in await poll(client)] == ["Written while you wrote."]
        assert await poll(client) == []


async def test_no_route_no_message_kept_and_bad_polls_get_a_clear_400(client, gateway, caplog):
    caplog.set_level(logging.INFO)
    push = HelplineRestInput(gateway).get_output_channel()
    stranger = gateway.conversation_id("never-wrote")
    await push.send_text_message(stranger, "marigold at dawn")
    assert await gateway.reply_route(stranger) is None
    assert await poll(client, "never-wrote") == []
    assert await gateway.reply_route(stranger) is None  # a poll never makes a route
    assert "never-wrote" not in caplog.text and "marigold" not in caplog.text
    # an erased conversation (quick exit) keeps nothing pushed afterwards
    await say(client, "hello")
    await erasure.erase(gateway.conversation_id(SENDER))
    await push.send_text_message(gateway.conversation_id(SENDER), "after the exit")
    assert await poll(client) == []
    for body in ({}, {"sender": ""}, {"sender": 7}, {"sender": "x" * 129}, ["x"]):
        reply = await client.post(f"{PREFIX}/poll", json=body)
        assert reply.status_code == 400 and "'sender'" in reply.json()["error"], body
    reply = await client.post(f"{PREFIX}/poll", content=b"{not json",
                              headers={"Content-Type": "application/json"})
    assert reply.status_code == 400


async def test_a_message_pushed_to_another_channel_is_not_kept_here(client, gateway):
    """A conversation's route belongs to one channel: a push meant for the web chat is not
    held by the REST channel's output (and the other way round)."""
    await say(client, "hello")
    conversation = gateway.conversation_id(SENDER)
    elsewhere = Gateway("webchat", gateway.secrets, gateway.routes)
    from channels.webchat import WebChatInput

    await WebChatInput(elsewhere).get_output_channel().send_text_message(conversation, "x")
    assert (await gateway.reply_route(conversation)).pending == ()


async def test_a_flood_from_one_conversation_gets_one_answer_then_silence(client, stub):
    """Issue 17 §2, through the channel: 20 messages a minute reach Rasa (the default of
    HELPLINE_MESSAGES_PER_MINUTE), the 21st gets the request to slow down, later ones an
    empty answer without a turn; another conversation is answered meanwhile."""
    from bot.catalog import load_catalog

    for number in range(20):
        assert (await say(client, f"message {number}"))[0]["text"] == "Shall we go on?"
    [slow] = await say(client, "one more")
    assert slow["text"].startswith(load_catalog().channel_text("slow_down", "en"))
    assert await say(client, "and another") == []
    assert (await say(client, "hello", sender="someone-else"))[0]["text"] == "Shall we go on?"
    assert len(stub.seen) == 21
