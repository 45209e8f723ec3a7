"""The Telegram channel over real HTTP: a Sanic server with the channel's blueprint in the
test's event loop, and a local fake Bot API (``tests/utils/fake_telegram.py``). Rasa is a stub
that answers fixed messages through the channel's collector, as in Rasa's own channel tests;
``tests/test_telegram_process.py`` goes the whole way with the trained model."""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
import uuid
from unittest import mock

import aiohttp
import pytest
from cryptography.fernet import Fernet, MultiFernet
from sanic import Sanic

from bot.catalog import load_catalog
from bot.privacy import logs
from bot.privacy.keys import Secrets
from bot.privacy.routes import MemoryRouteCache
from bot.services.reply import location_payload
from channels.gateway import Gateway
from channels.telegram import (
    SECRET_HEADER, TelegramInput, callback_data, menu_fingerprint, pressed_payload,
)
from channels.telegram_api import (
    TelegramConfig, TelegramSender, TelegramSettingsError, split_text,
)
from tests.utils.assistant import free_port
from tests.utils.fake_telegram import FakeTelegram

SECRET = "s3cret-Token_for-the-webhook-0123456789"
CHAT_ID = 424242  # short enough that no identifier pattern of the log scrubber would hide it
NAME, USERNAME = "Zubeyda", "zubeyda_kk"
TEXT = "the agency in Tarabulus took my documents"
LONG_PAYLOAD = '/inform_service{"service_id":"' + "x" * 60 + '"}'
CATALOG = load_catalog()
REPLY = [{"text": "Bonjour, que voulez-vous faire ?", "metadata": {"language": "fr"}, "buttons": [
    {"title": "S'informer", "payload": "/ask_trafficking_info"},
    {"title": "Un service", "payload": LONG_PAYLOAD},
]}, {"text": "Second message"}]
_ids = itertools.count(1)


class Rasa:
    """Stands in for Rasa: records each UserMessage and answers ``replies`` through its
    output channel (the channel's TurnCollector)."""

    def __init__(self) -> None:
        self.received = []
        self.replies = REPLY

    async def __call__(self, message) -> None:
        self.received.append(message)
        for reply in self.replies:
            await message.output_channel.send_response(message.sender_id, dict(reply))

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.received]


class Served:
    def __init__(self, channel: TelegramInput, rasa: Rasa, fake: FakeTelegram, url: str) -> None:
        self.channel, self.rasa, self.fake, self.url = channel, rasa, fake, url

    async def post(self, body, secret=SECRET, raw: bool = False):
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        data = body if raw else None
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url, data=data, json=None if raw else body,
                                    headers=headers) as reply:
                return reply.status, await reply.json()

    async def settle(self) -> None:
        await self.channel.drain(20)


def update(**fields) -> dict:
    return {"update_id": next(_ids), **fields}


def message(text=None, chat_id=CHAT_ID, chat_type="private", **extra) -> dict:
    body = {"message_id": next(_ids), "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "first_name": NAME, "username": USERNAME},
            "from": {"id": chat_id, "is_bot": False, "first_name": NAME, "username": USERNAME}}
    if text is not None:
        body["text"] = text
    body.update(extra)
    return body


def callback(data: str, chat_id=CHAT_ID) -> dict:
    return update(callback_query={
        "id": f"cb{next(_ids)}", "chat_instance": "42", "data": data,
        "from": {"id": chat_id, "is_bot": False, "first_name": NAME, "username": USERNAME},
        "message": message("Bonjour", chat_id=chat_id) | {"from": {"id": 1, "is_bot": True,
                                                                    "first_name": "Helpline"}}})


@contextlib.contextmanager
def sanic_touchup():
    """Sanic's start-up "touch-up" rewrites methods of Sanic's own classes, and fails when they
    were rewritten already by an earlier app in this process. Then it is skipped (the rewritten
    methods serve every app); else it runs and is undone afterwards, for the next app."""
    from sanic.touchup.service import TouchUp

    targets = {target for target, _ in TouchUp._registry}
    if any(target.__dict__.get("__touched__") for target in targets):
        with mock.patch("sanic.app.TouchUp.run"):
            yield
        return
    missing = object()
    originals = {(target, name): target.__dict__.get(name, missing) for target, name in TouchUp._registry}
    try:
        yield
    finally:
        for (target, name), method in originals.items():
            if method is missing:
                if name in target.__dict__:
                    delattr(target, name)
            else:
                setattr(target, name, method)
        for target in targets:
            if "__touched__" in target.__dict__:
                delattr(target, "__touched__")


@pytest.fixture
def fake():
    server = FakeTelegram(slow_seconds=1.5).start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def serving(fake: FakeTelegram, rasa, idle_seconds: float = 600, **channel_options):
    """A Sanic server with the channel's blueprint, sending to ``fake``, answered by ``rasa``;
    its route cache under a fresh key (``Served.key``)."""
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=idle_seconds)
    gateway = Gateway("telegram", Secrets(b"t" * 32, (key,)), routes)
    config = TelegramConfig(fake.token, SECRET, api_url=fake.api_url, timeout_seconds=0.5)
    sender = TelegramSender(config, base_delay=0.01, max_delay=0.05, max_retry_after=0.1)
    channel = TelegramInput(sender, gateway, **channel_options)
    app = Sanic(f"telegram_test_{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(rasa), url_prefix="/webhooks/telegram")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    with sanic_touchup():
        await server.startup()
        await server.after_start()
        served = Served(channel, rasa, fake, f"http://127.0.0.1:{port}/webhooks/telegram/webhook")
        served.key = key
        yield served
        await server.before_stop()
        await server.close()
    routes.close()
    logs.forget_sensitive()


@pytest.fixture
async def served(fake):
    async with serving(fake, Rasa()) as served:
        yield served


def keyboard_of(params: dict) -> list:
    return [[(b["text"], b["callback_data"]) for b in row]
            for row in (params.get("reply_markup") or {}).get("inline_keyboard", [])]


# -- the secret, bad bodies ---------------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1] + "X", SECRET + "X"])
async def test_a_wrong_or_missing_secret_is_403_and_nothing_is_processed(served, secret, caplog):
    caplog.set_level(logging.INFO)
    status, reply = await served.post(update(message=message(TEXT)), secret=secret)
    assert status == 403 and reply == {"error": "wrong or missing secret token"}
    await served.settle()
    assert served.rasa.received == [] and served.fake.requests("sendMessage") == []
    assert "refused an update without the right secret token" in caplog.text
    assert TEXT not in caplog.text and str(CHAT_ID) not in caplog.text


@pytest.mark.parametrize("body, error", [
    (b"{not json", "the body must be a Telegram Update: a JSON object with an integer 'update_id'"),
    (b"[1, 2]", "the body must be a Telegram Update: a JSON object with an integer 'update_id'"),
    (b'{"update_id": "7"}', "the body must be a Telegram Update: a JSON object with an integer 'update_id'"),
    (b'{"update_id": 7, "message": {"text": "hi"}}',
     "'message.chat' must be a Chat with an integer 'id' and a 'type'"),
    (b'{"update_id": 7, "message": "hi"}', "'message' must be a Message object"),
])
async def test_a_body_that_is_not_an_update_gets_a_clear_400(served, body, error):
    status, reply = await served.post(body, raw=True)
    assert (status, reply) == (400, {"error": error})
    assert served.rasa.received == []


async def test_the_health_check_answers(served):
    async with aiohttp.ClientSession() as session:
        async with session.get(served.url.rsplit("/", 1)[0] + "/") as reply:
            assert reply.status == 200 and await reply.json() == {"status": "ok"}


# -- turns -------------------------------------------------------------------------------------

async def test_a_text_is_a_pseudonymous_turn_and_the_reply_has_an_inline_keyboard(served):
    status, reply = await served.post(update(message=message(TEXT)))
    assert (status, reply) == (200, {"status": "ok"})
    sent = await served.fake.arrived("sendMessage", 2)
    received = served.rasa.received[0]
    assert received.text == TEXT and received.input_channel == "telegram"
    assert received.sender_id == served.channel.gateway.conversation_id(str(CHAT_ID))
    assert str(CHAT_ID) not in received.sender_id and not received.metadata
    assert [(p["chat_id"], p["text"]) for p in sent] == [
        (str(CHAT_ID), REPLY[0]["text"]), (str(CHAT_ID), "Second message")]
    menu = ["/ask_trafficking_info", LONG_PAYLOAD]
    assert keyboard_of(sent[0]) == [[("S'informer", "/ask_trafficking_info")],
                                    [("Un service", f"#2:{menu_fingerprint(menu)}")]]
    assert "reply_markup" not in sent[1] and "parse_mode" not in sent[0]


@pytest.mark.parametrize("typed, payload", [
    ("/start", "/greet"), ("/help", "/menu"), ("/exit", "/quick_exit"), ("/delete", "/forget_me"),
    ("/start@helpline_test_bot", "/greet"), ("/EXIT", "/quick_exit"), ("/delete now", "/forget_me"),
    ("/whatever", "/menu"), ('/inform_location{"latitude":1,"longitude":2}', "/menu"),
])
async def test_commands_become_their_intents(served, typed, payload):
    await served.post(update(message=message(typed)))
    assert served.rasa.texts == [payload]


async def test_a_typed_stop_word_ends_a_subscription_only_for_a_subscriber(
        served, tmp_path, monkeypatch):
    """Campaign messages say "Reply STOP": on Telegram too, a subscriber's STOP (or ARRET, ...)
    is /unsubscribe; anyone else's "stop" goes to Rasa as typed (stop the questions)."""
    from bot.campaigns.service import subscribers_for
    from bot.storage import make_engine, upgrade

    url = f"sqlite:///{tmp_path}/campaigns.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(tmp_path / "secrets.json"))
    await served.post(update(message=message("STOP")))  # not subscribed
    subscribers_for(url).consent(served.channel.gateway.conversation_id(str(CHAT_ID)),
                                 "telegram", "fr")
    for typed in ("STOP", "Arrêt !", "stop please"):
        await served.post(update(message=message(typed)))
    assert served.rasa.texts == ["STOP", "/unsubscribe", "/unsubscribe", "stop please"]
    other = CHAT_ID + 1
    await served.post(update(message=message("stop", chat_id=other)))
    assert served.rasa.texts[-1] == "stop"


async def test_a_typed_digit_picks_the_last_menu(served):
    await served.post(update(message=message("hello")))
    await served.post(update(message=message("2")))
    assert served.rasa.texts == ["hello", LONG_PAYLOAD]


async def test_a_button_press_sends_its_payload_and_is_always_answered(served):
    await served.post(update(message=message("hello")))
    menu = ["/ask_trafficking_info", LONG_PAYLOAD]
    presses = [callback("/ask_trafficking_info"), callback(f"#2:{menu_fingerprint(menu)}"),
               callback("#2:00000000"), callback("not a payload")]
    for press in presses:
        assert (await served.post(press))[0] == 200
    assert served.rasa.texts == ["hello", "/ask_trafficking_info", LONG_PAYLOAD, "/menu", "/menu"]
    answered = await served.fake.arrived("answerCallbackQuery", 4)
    assert sorted(p["callback_query_id"] for p in answered) == sorted(
        p["callback_query"]["id"] for p in presses)


async def test_a_shared_location_is_the_services_search_payload(served):
    await served.post(update(message=message(location={"latitude": 11.8464, "longitude": 13.1571})))
    assert served.rasa.texts == [location_payload(11.8464, 13.1571)]


async def test_an_edited_message_is_a_new_message_but_a_moving_live_location_is_not(served):
    await served.post(update(edited_message=message("I meant: help me", edit_date=int(time.time()))))
    await served.post(update(edited_message=message(location={"latitude": 1.0, "longitude": 2.0},
                                                    edit_date=int(time.time()))))
    assert served.rasa.texts == ["I meant: help me"]


@pytest.mark.parametrize("media", [
    {"photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 9, "height": 9}]},
    {"sticker": {"file_id": "s1", "file_unique_id": "u2", "width": 9, "height": 9,
                 "is_animated": False, "is_video": False, "type": "regular"}},
    {"voice": {"file_id": "v1", "file_unique_id": "u3", "duration": 3}},
    {"contact": {"phone_number": "+999 555 0101", "first_name": "Someone"}},
])
async def test_media_get_the_text_only_reply_in_the_conversation_language(served, media):
    await served.post(update(message=message(**media)))  # no route yet: the default language
    await served.post(update(message=message("hello")))  # the bot answered in French
    await served.settle()
    served.fake.clear()
    await served.post(update(message=message(**media)))
    assert served.rasa.texts == ["hello"]
    sent = await served.fake.arrived("sendMessage", 1)
    assert [p["text"] for p in sent] == [CATALOG.channel_text("media_unsupported", "fr")]


async def test_media_without_a_conversation_get_the_default_language(served):
    await served.post(update(message=message(photo=[{"file_id": "p", "file_unique_id": "u",
                                                     "width": 1, "height": 1}])))
    sent = await served.fake.arrived("sendMessage", 1)
    assert [p["text"] for p in sent] == [CATALOG.channel_text("media_unsupported", "en")]
    assert served.rasa.received == []


async def test_group_chats_are_ignored(served):
    status, reply = await served.post(update(message=message("hello", chat_id=-1001, chat_type="group")))
    assert (status, reply) == (200, {"status": "ignored"})
    await served.settle()
    assert served.rasa.received == [] and served.fake.requests("sendMessage") == []


# -- sending -----------------------------------------------------------------------------------

async def test_429_5xx_and_timeouts_are_retried_and_the_reply_arrives_once(served):
    served.fake.script = [429, 500, "timeout"]
    served.rasa.replies = REPLY[:1]
    await served.post(update(message=message("hello")))
    await served.settle()
    calls = served.fake.requests("sendMessage")
    assert [c.answered for c in calls] == [429, 500, "timeout", 200]
    assert [p["text"] for p in served.fake.sent()] == [REPLY[0]["text"]]


async def test_a_blocked_bot_is_not_retried_and_the_turn_stops(served, caplog):
    caplog.set_level(logging.INFO)
    served.fake.script = [403]
    await served.post(update(message=message("hello")))
    await served.settle()
    assert [c.answered for c in served.fake.requests("sendMessage")] == [403]  # the 2nd not sent
    assert "blocked" in caplog.text and str(CHAT_ID) not in caplog.text


async def test_turns_of_one_conversation_are_delivered_in_order(served):
    served.fake.script = [429, 429]  # the first turn's first message waits
    served.rasa.replies = [{"text": "first turn"}]
    await served.post(update(message=message("one")))
    served.rasa.replies = [{"text": "second turn"}]
    await served.post(update(message=message("two")))
    await served.settle()
    assert [p["text"] for p in served.fake.sent()] == ["first turn", "second turn"]


async def test_a_pushed_message_goes_to_the_conversation_chat(served):
    await served.post(update(message=message("hello")))
    await served.settle()
    served.fake.clear()
    conversation = served.channel.gateway.conversation_id(str(CHAT_ID))
    output = served.channel.get_output_channel()
    await output.send_response(conversation, {"text": "A caseworker writes", "buttons": [
        {"title": "Reply", "payload": "/request_human"}]})
    await output.send_response("c" + "0" * 32, {"text": "nobody"})  # no route: dropped
    await served.settle()
    sent = served.fake.sent()
    assert [(p["chat_id"], p["text"]) for p in sent] == [(str(CHAT_ID), "A caseworker writes")]
    assert keyboard_of(sent[0]) == [[("Reply", "/request_human")]]
    await served.post(update(message=message("1")))  # the pushed buttons are the menu now
    assert served.rasa.texts[-1] == "/request_human"


async def test_the_logs_never_hold_the_chat_id_names_texts_or_token(served, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)

    class Forgetful:  # the scrubber's memory off: only what the channel logs itself is seen
        def add(self, values):
            pass

        def __bool__(self):
            return False

        def clear(self):
            pass

    monkeypatch.setattr(logs, "_remembered", Forgetful())
    served.fake.script = [500, 403]
    for body in (update(message=message(TEXT)), update(message=message("/start")),
                 update(message=message(photo=[{"file_id": "p", "file_unique_id": "u",
                                                "width": 1, "height": 1}])),
                 callback("/ask_trafficking_info"), update(message=message(TEXT)),
                 update(message={"text": TEXT})):
        await served.post(body)
    await served.settle()
    assert caplog.records  # the channel did log (attempts, refusals)
    for secret in (str(CHAT_ID), NAME, USERNAME, "Tarabulus", "documents", served.fake.token,
                   served.fake.token.split(":")[1], SECRET):
        assert secret not in caplog.text, secret


# -- settings and helpers ----------------------------------------------------------------------

@pytest.mark.parametrize("credentials, problem", [
    (None, "has no settings for channels.telegram.TelegramInput"),
    ({"secret_token": SECRET}, "'token' is missing or empty"),
    ({"token": "", "secret_token": SECRET}, "'token' is missing or empty"),
    ({"token": "123:abc def ghi jkl", "secret_token": SECRET}, "'token' must be the bot token BotFather gave"),
    ({"token": "123456:ABCDEFGHIJKLmnop"}, "'secret_token' is missing or empty"),
    ({"token": "123456:ABCDEFGHIJKLmnop", "secret_token": "has spaces"}, "'secret_token' must be 1 to 256"),
    ({"token": "123456:ABCDEFGHIJKLmnop", "secret_token": "x" * 257}, "'secret_token' must be 1 to 256"),
    ({"token": "123456:ABCDEFGHIJKLmnop", "secret_token": SECRET, "api_url": "http://example.org/bot"},
     "'api_url' must be https"),
    ({"token": "123456:ABCDEFGHIJKLmnop", "secret_token": SECRET, "webhook_url": "http://x.org/"},
     "'webhook_url' must be an https:// URL"),
    ({"token": "123456:ABCDEFGHIJKLmnop", "secret_token": SECRET, "tokn": "x"}, "unknown key(s) 'tokn'"),
])
def test_bad_settings_stop_the_start_naming_the_key_never_the_token(credentials, problem):
    with pytest.raises(TelegramSettingsError) as raised:
        TelegramInput.from_credentials(credentials)
    assert problem in str(raised.value)
    assert "ABCDEFGHIJKL" not in str(raised.value) and "abc def" not in str(raised.value)


def test_the_settings_repr_hides_the_token_and_secret():
    config = TelegramConfig("123456:ABCDEFGHIJKLmnop", SECRET)
    assert "ABCDEFGHIJKL" not in repr(config) and SECRET not in repr(config)
    assert config.api_url == "https://api.telegram.org/bot"


def test_callback_data_and_presses():
    menu = ["/a", LONG_PAYLOAD]
    assert callback_data({"payload": "/a"}, menu) == "/a"
    assert callback_data({"payload": LONG_PAYLOAD}, menu) == f"#2:{menu_fingerprint(menu)}"
    assert callback_data({"payload": LONG_PAYLOAD + "x"}, menu) is None  # neither fits nor indexed
    assert callback_data({"payload": "/é" * 40}, ["/é" * 40]).startswith("#1:")  # 64 bytes, not chars
    assert pressed_payload(f"#2:{menu_fingerprint(menu)}", menu) == LONG_PAYLOAD
    assert pressed_payload(f"#3:{menu_fingerprint(menu)}", menu) == "/menu"
    assert pressed_payload(f"#1:{menu_fingerprint(menu)}", ["/other"]) == "/menu"


def test_long_texts_are_split_at_telegrams_limit():
    text = ("word " * 2000).strip()
    parts = split_text(text)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    assert split_text("short") == ["short"] and split_text("") == []
