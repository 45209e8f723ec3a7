"""The web chat channel without a model: a Sanic app with the channel's blueprint and a stub
in Rasa's place that answers through the channel's collector, called in-process over ASGI
(``tests.utils.sanic_asgi``).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet, MultiFernet
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.catalog import load_catalog
from bot.deployment import parse_deployment
from bot.privacy.keys import Secrets
from bot.privacy.logs import forget_sensitive
from bot.privacy.pseudonyms import is_pseudonym
from bot.privacy.routes import MemoryRouteCache
from channels.gateway import Gateway
from channels.webchat import SECURITY_HEADERS, WebChatInput
from tests.utils.sanic_asgi import asgi_client

PREFIX = "/webhooks/webchat"
SESSION = "0123456789abcdef0123456789abcdef"
OUTSIDE = re.compile(r"(https?:)?//[a-z0-9]", re.IGNORECASE)
CATALOG = load_catalog()


class Stub:
    """Rasa's place: records what came in and answers with two buttons, in French."""

    def __init__(self) -> None:
        self.seen: list[UserMessage] = []

    async def __call__(self, message: UserMessage) -> None:
        self.seen.append(message)
        await message.output_channel.send_response(message.sender_id, {
            "text": "Première ligne.\n\nDeuxième paragraphe.",
            "buttons": [{"title": "Oui", "payload": "/affirm"},
                        {"title": "Non", "payload": "/deny"}],
            "metadata": {"language": "fr", "utter_action": "utter_x"},
        })


@pytest.fixture
def sample(sample_path):
    return yaml.safe_load(sample_path.read_text(encoding="utf-8"))


@pytest.fixture
def gateway():
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=60)
    yield Gateway("webchat", Secrets(pseudonym_key=b"k" * 32, route_keys=(key,)), routes)
    routes.close()
    forget_sensitive()


@asynccontextmanager
async def serve(channel: WebChatInput, stub: Stub):
    app = Sanic(f"webchat_test_{uuid.uuid4().hex[:12]}")
    app.blueprint(channel.blueprint(stub), url_prefix=PREFIX)
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def stub():
    return Stub()


@pytest.fixture
async def client(gateway, stub, sample):
    channel = WebChatInput(gateway, parse_deployment(sample), CATALOG)
    async with serve(channel, stub) as http:
        yield http


def assert_safe_headers(reply: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, name
    csp = reply.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert reply.headers["referrer-policy"] == "no-referrer"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert reply.headers["cache-control"] == "no-store"
    assert "set-cookie" not in reply.headers


def page_config(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="page-words">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


async def test_the_page_with_its_headers_and_every_enabled_language(client):
    reply = await client.get(f"{PREFIX}/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert_safe_headers(reply)
    html = reply.text
    assert not OUTSIDE.search(html), "the page refers to another host"
    assert '<html lang="en" dir="ltr">' in html
    assert "<script>" not in html and " style=" not in html and "onclick" not in html
    assert 'src="chat.js"' in html and 'href="chat.css"' in html
    assert CATALOG.channel["en"]["web_quick_exit"] in html
    config = page_config(html)
    assert [item["code"] for item in config["languages"]] == ["en", "fr", "ar", "es"]
    assert {item["code"]: item["dir"] for item in config["languages"]}["ar"] == "rtl"
    assert config["words"]["ar"]["web_send"] == CATALOG.channel["ar"]["web_send"]
    assert set(config["words"]["fr"]) == {k for k in CATALOG.channel["fr"] if k.startswith("web_")}
    assert config["quickExitUrl"] == "neutral"


async def test_the_page_address_without_its_slash_is_redirected(client):
    reply = await client.get(PREFIX)
    assert reply.status_code in (301, 302) and reply.headers["location"] == "webchat/"
    assert_safe_headers(reply)


async def test_the_deployment_decides_languages_default_and_quick_exit(gateway, stub, sample):
    data = copy.deepcopy(sample)
    data.update(languages=["ar", "fr"], default_language="ar",
                web_chat={"quick_exit_url": "https://weather.example.org/"})
    for area in data["emergency_contacts"].values():
        for contact in area:
            contact["name"] = {k: v for k, v in contact["name"].items() if k in ("ar", "fr")}
    async with serve(WebChatInput(gateway, parse_deployment(data), CATALOG), stub) as http:
        html = (await http.get(f"{PREFIX}/")).text
    assert '<html lang="ar" dir="rtl">' in html
    assert CATALOG.channel["ar"]["web_title"] in html
    config = page_config(html)
    assert [item["code"] for item in config["languages"]] == ["ar", "fr"]
    assert set(config["words"]) == {"ar", "fr"}
    assert config["quickExitUrl"] == "https://weather.example.org/"


async def test_the_words_cannot_close_their_script_block(gateway, stub, sample):
    from bot.catalog import Catalog

    channel_words = {lang: dict(words) for lang, words in CATALOG.channel.items()}
    channel_words["en"]["web_title"] = "</script><script>alert(1)</script> & co"
    catalog = Catalog(CATALOG.texts, CATALOG.buttons, CATALOG.names, CATALOG.prompts,
                      CATALOG.payloads, CATALOG.response_buttons, CATALOG.main_menu,
                      channel_words)
    async with serve(WebChatInput(gateway, parse_deployment(sample), catalog), stub) as http:
        html = (await http.get(f"{PREFIX}/")).text
    assert "<script>alert" not in html
    assert page_config(html)["words"]["en"]["web_title"].startswith("</script><script>")


@pytest.mark.parametrize("name, kind", [("chat.js", "text/javascript"), ("chat.css", "text/css"),
                                        ("neutral.css", "text/css")])
async def test_the_static_files(client, name, kind):
    reply = await client.get(f"{PREFIX}/{name}")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith(kind)
    assert_safe_headers(reply)
    assert not OUTSIDE.search(reply.text), f"{name} refers to another host"


async def test_nothing_else_is_served(client):
    for path in ("index.html", "neutral.html", "../webchat.py", "%2e%2e/webchat.py", "web/chat.js"):
        assert (await client.get(f"{PREFIX}/{path}")).status_code == 404, path


async def test_the_neutral_page_says_nothing_about_the_helpline(client, sample):
    reply = await client.get(f"{PREFIX}/neutral")
    assert reply.status_code == 200
    assert_safe_headers(reply)
    text = reply.text.lower()
    for word in ("helpline", "traffick", "chat", "exit", sample["organisation"]["name"].lower()):
        assert word not in text, word
    assert not OUTSIDE.search(reply.text)


@pytest.mark.parametrize("body, error", [
    (b"{not json", "the body must be a JSON object"),
    (b"[1, 2]", "the body must be a JSON object"),
    (b'"hello"', "the body must be a JSON object"),
    (b"null", "the body must be a JSON object"),
    (b"", "the body must be a JSON object"),
    (json.dumps({"message": "hi"}).encode(), "'sender' must be a non-empty string"),
    (json.dumps({"sender": SESSION, "message": ""}).encode(), "'message' must be a non-empty"),
    (json.dumps({"sender": "+999 555 0123", "message": "hi"}).encode(), "the page's session id"),
    (json.dumps({"sender": SESSION.upper(), "message": "hi"}).encode(), "the page's session id"),
    (json.dumps({"sender": SESSION, "location": {"latitude": 91, "longitude": 0}}).encode(),
     "'location.latitude' must be a number"),
    (json.dumps({"sender": SESSION, "message": "hi", "location": {}}).encode(),
     "send either 'message' or 'location'"),
])
async def test_bad_bodies_get_a_clear_400(client, stub, body, error):
    reply = await client.post(f"{PREFIX}/webhook", content=body,
                              headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert error in reply.json()["error"]
    assert_safe_headers(reply)
    assert stub.seen == []


async def test_a_message_gets_the_bots_messages_whole(client, stub, gateway):
    reply = await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "bonjour"})
    assert reply.status_code == 200
    assert_safe_headers(reply)
    assert reply.json() == [{
        "text": "Première ligne.\n\nDeuxième paragraphe.",
        "buttons": [{"title": "Oui", "payload": "/affirm"}, {"title": "Non", "payload": "/deny"}],
        "language": "fr",
    }]
    [message] = stub.seen
    assert message.text == "bonjour" and message.input_channel == "webchat"
    assert is_pseudonym(message.sender_id) and SESSION not in message.sender_id
    assert message.sender_id == gateway.conversation_id(SESSION)
    route = await gateway.reply_route(message.sender_id)
    assert route.menu == ("/affirm", "/deny") and route.language == "fr"
    assert SESSION not in reply.text  # neither the session id nor the pseudonym goes back


async def test_a_typed_number_means_the_last_buttons(client, stub):
    await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "hello"})
    await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "2"})
    assert [m.text for m in stub.seen] == ["hello", "/deny"]


async def test_a_shared_location_and_a_quick_exit_beacon(client, stub):
    await client.post(f"{PREFIX}/webhook", json={
        "sender": SESSION, "location": {"latitude": 11.8469, "longitude": 13.1571}})
    beacon = json.dumps({"sender": SESSION, "message": "/quick_exit"}).encode()
    reply = await client.post(f"{PREFIX}/webhook", content=beacon,
                              headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert reply.status_code == 200
    assert [m.text for m in stub.seen] == [
        '/inform_location{"latitude":11.8469,"longitude":13.1571}', "/quick_exit"]


async def test_no_cookie_and_no_message_or_session_in_the_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    replies = [
        await client.get(f"{PREFIX}/"), await client.get(f"{PREFIX}/chat.js"),
        await client.get(f"{PREFIX}/neutral"),
        await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "my secret"}),
        await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": ""}),
        await client.post(f"{PREFIX}/webhook", json={"sender": "+999 555 0123", "message": "x"}),
    ]
    assert all("set-cookie" not in r.headers for r in replies)
    assert not client.cookies
    logged = caplog.text
    assert SESSION not in logged and "my secret" not in logged and "555 0123" not in logged


async def test_pushed_messages_wait_for_the_pages_poll_once_each(client, gateway):
    from channels.gateway import MAX_HELD as MAX_PUSHED

    await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "bonjour"})
    conversation = gateway.conversation_id(SESSION)
    push = WebChatInput(gateway).get_output_channel()
    assert (await client.post(f"{PREFIX}/poll", json={"sender": SESSION})).json() == []
    await push.send_response(conversation, {"text": "Bonjour, je suis là.", "metadata": {"language": "fr"}})
    await push.send_text_message(conversation, "Vous êtes en sécurité ?")
    stored = gateway.routes._items[conversation][1]
    assert b"Bonjour" not in stored and "sécurité".encode() not in stored  # encrypted in the route
    polled = await client.post(f"{PREFIX}/poll", json={"sender": SESSION})
    assert polled.status_code == 200
    assert_safe_headers(polled)
    assert [(m["text"], m["language"]) for m in polled.json()] == [
        ("Bonjour, je suis là.", "fr"), ("Vous êtes en sécurité ?", "")]
    assert (await client.post(f"{PREFIX}/poll", json={"sender": SESSION})).json() == []
    # a message sent before the page polled brings the pushed ones first
    await push.send_text_message(conversation, "Encore là ?")
    turn = await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "oui"})
    assert [m["text"] for m in turn.json()][0] == "Encore là ?"
    assert (await client.post(f"{PREFIX}/poll", json={"sender": SESSION})).json() == []
    # a page that never polls keeps only the latest MAX_PUSHED
    for n in range(MAX_PUSHED + 5):
        await push.send_text_message(conversation, f"m{n}")
    kept = (await client.post(f"{PREFIX}/poll", json={"sender": SESSION})).json()
    assert len(kept) == MAX_PUSHED and kept[-1]["text"] == f"m{MAX_PUSHED + 4}"


async def test_a_poll_never_makes_a_route_and_bad_polls_get_a_400(client, gateway):
    other = "0" * 32
    assert (await client.post(f"{PREFIX}/poll", json={"sender": other})).json() == []
    assert await gateway.reply_route(gateway.conversation_id(other)) is None
    await WebChatInput(gateway).get_output_channel().send_text_message(gateway.conversation_id(other), "lost")
    assert await gateway.reply_route(gateway.conversation_id(other)) is None  # nothing kept
    for body in ({"sender": "+999 555 0142"}, {}, [SESSION]):
        reply = await client.post(f"{PREFIX}/poll", json=body)
        assert reply.status_code == 400 and "session id" in reply.json()["error"]
    assert (await client.post(f"{PREFIX}/poll", content=b"{not json")).status_code == 400


async def test_a_message_pushed_during_the_persons_turn_waits_for_the_next_poll(gateway, sample):
    """A caseworker's reply pushed while the person's own message is being answered (Rasa
    runs the console's action between the two) is neither lost nor shown twice."""
    channel = WebChatInput(gateway, parse_deployment(sample), CATALOG)
    push = channel.get_output_channel()

    class PushedMeanwhile(Stub):
        async def __call__(self, message: UserMessage) -> None:
            await push.send_text_message(message.sender_id, "Pushed during the turn.")
            await super().__call__(message)

    stub = PushedMeanwhile()
    async with serve(channel, stub) as client:
        await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "bonjour"})
        assert [m["text"] for m in (await client.post(
            f"{PREFIX}/poll", json={"sender": SESSION})).json()] == ["Pushed during the turn."]
        # one waiting before the turn is shown with it; the one pushed during it waits
        await push.send_text_message(gateway.conversation_id(SESSION), "Before the turn.")
        turn = (await client.post(f"{PREFIX}/webhook",
                                  json={"sender": SESSION, "message": "oui"})).json()
        assert [m["text"] for m in turn][0] == "Before the turn."
        assert "Pushed during the turn." not in [m["text"] for m in turn]
        assert [m["text"] for m in (await client.post(
            f"{PREFIX}/poll", json={"sender": SESSION})).json()] == ["Pushed during the turn."]
        assert (await client.post(f"{PREFIX}/poll", json={"sender": SESSION})).json() == []
        # the turn's buttons are still remembered: "2" is the second option
        await client.post(f"{PREFIX}/webhook", json={"sender": SESSION, "message": "2"})
    assert stub.seen[-1].text == "/deny"


@pytest.mark.parametrize("language", ["en", "fr", "ar", "es"])
def test_the_privacy_note_says_what_is_kept_and_for_how_long(sample, language):
    """Issue 16: the note said "we keep nothing that shows who you are", while choices and
    answers are kept for the deployment's conversation_idle_hours and a hand-off keeps the
    messages, encrypted, until the case closes. The hours come from the deployment."""
    from channels.webchat import page_words

    sample["retention"]["conversation_idle_hours"] = 36
    note = page_words(parse_deployment(sample), CATALOG)["words"][language]["web_privacy_note"]
    assert "36" in note and "{keep_hours}" not in note
    assert "24" not in note
