"""The SMS channel in the Rasa style: the channel's blueprint in a Sanic app, a stand-in for
Rasa that answers through the collector, signed requests as Twilio makes them, and the replies
going out over real HTTP to the fake Twilio API (tests/utils/fake_twilio.py)."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from cryptography.fernet import Fernet, MultiFernet
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from twilio.request_validator import RequestValidator

from bot.catalog import load_catalog
from bot.deployment import SmsSettings, cached_deployment
from bot.privacy.keys import Secrets
from bot.privacy.logs import forget_sensitive
from bot.privacy.pseudonyms import is_pseudonym
from bot.privacy.routes import MemoryRouteCache
from bot.settings import Settings
from channels.gateway import Gateway
from channels.segments import count_segments
from channels.sms_text import sms_friendly
from channels.sms import SmsConfig, SmsInput, SmsPushOutput, load_keywords
from channels.twilio_api import TwilioConfig, TwilioSender
from tests.utils.fake_twilio import FakeTwilio
from tests.utils.sanic_asgi import asgi_client

NUMBER = "+9995550142"  # fictional (+999 is not assigned)
WEBHOOK = "https://helpline.example.org/webhooks/sms/webhook"
CATALOG = load_catalog()
MENU = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
LONG = ("This is the first sentence of a long answer about job offers and what to check. " * 6).strip()


class FakeRasa:
    """Stands in for Rasa's on_new_message: records messages, answers from ``replies``."""

    def __init__(self) -> None:
        self.received: list[UserMessage] = []
        self.replies = {}  # text -> list of messages; default: one "ok" with a yes/no menu

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        for reply in self.replies.get(message.text, [{"text": f"ok: {message.text}", "buttons": MENU,
                                                       "metadata": {"language": "en"}}]):
            await message.output_channel.send_response(message.sender_id, dict(reply))

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.received]


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def rasa():
    return FakeRasa()


def make_channel(fake, provider_opt_out=True, budget=2):
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=600)
    gateway = Gateway("sms", Secrets(pseudonym_key=b"p" * 32, route_keys=(key,)), routes)
    twilio = TwilioConfig(fake.account_sid, fake.auth_token, "+9995550100", api_url=fake.url,
                          timeout_seconds=1.0)
    config = SmsConfig(twilio, WEBHOOK, provider_opt_out)
    return SmsInput(config, gateway, SmsSettings(budget, True), background=False,
                    sender=TwilioSender(twilio, base_delay=0.01, max_delay=0.05))


@pytest.fixture
def channel(fake):
    made = make_channel(fake)
    yield made
    made.gateway.routes.close()
    forget_sensitive()


def app_for(channel, rasa) -> Sanic:
    app = Sanic(f"sms_test_{id(channel)}")
    app.blueprint(channel.blueprint(rasa), url_prefix="/webhooks/sms")
    return app


def signed(params: dict, token: str) -> dict:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(WEBHOOK, params)}


SIDS = itertools.count(1)  # Twilio gives every message its own MessageSid


async def sms(client, fake, body: str, **extra) -> object:
    params = {"From": NUMBER, "To": "+9995550100", "Body": body, "NumMedia": "0",
              "MessageSid": f"SM{next(SIDS):032d}", **extra}
    return await client.post("/webhooks/sms/webhook", data=params,
                             headers=signed(params, fake.auth_token))


async def test_an_unsigned_or_forged_request_is_refused_and_not_processed(channel, rasa, fake, caplog):
    caplog.set_level(logging.INFO)
    params = {"From": NUMBER, "Body": "my name is Amina"}
    async with asgi_client(app_for(channel, rasa)) as client:
        unsigned = await client.post("/webhooks/sms/webhook", data=params)
        forged = await client.post("/webhooks/sms/webhook", data=params,
                                   headers=signed(params, "not-the-token"))
        tampered = await client.post("/webhooks/sms/webhook", data={**params, "Body": "other"},
                                     headers=signed(params, fake.auth_token))
    assert [r.status_code for r in (unsigned, forged, tampered)] == [403, 403, 403]
    assert rasa.received == [] and fake.received == []
    assert "valid Twilio signature" in caplog.text
    assert "Amina" not in caplog.text and "0142" not in caplog.text


async def test_a_signed_sms_reaches_rasa_under_a_pseudonym_and_the_reply_goes_out(channel, rasa, fake):
    async with asgi_client(app_for(channel, rasa)) as client:
        answer = await sms(client, fake, "hello")
    assert answer.status_code == 200 and "<Response>" in answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    [message] = rasa.received
    assert message.text == "hello" and is_pseudonym(message.sender_id) and NUMBER not in message.sender_id
    assert message.input_channel == "sms"
    [sent] = fake.delivered()
    assert sent["To"] == NUMBER and sent["From"] == "+9995550100"
    assert sent["Body"] == "ok: hello\n1. Yes\n2. No"


async def test_a_typed_digit_means_the_option_of_the_last_menu(channel, rasa, fake):
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "hello")
        await sms(client, fake, "2")
        await sms(client, fake, " ١ ")  # Arabic-Indic digit one
    assert rasa.texts == ["hello", "/deny", "/affirm"]


async def test_a_long_answer_is_split_and_the_rest_comes_on_more(channel, rasa, fake):
    rasa.replies["long"] = [{"text": LONG, "buttons": MENU, "metadata": {"language": "fr"}}]
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "long")
        first = fake.delivered()[-1]["Body"]
        await sms(client, fake, "PLUS")  # French "more": the hint said so
        second = fake.delivered()[-1]["Body"]
        rest = []
        while len(rest) < 10 and "1. Yes" not in (rest or [second])[-1]:
            await sms(client, fake, "more")
            rest.append(fake.delivered()[-1]["Body"])
        await sms(client, fake, "more")  # nothing left: Rasa hears it
    hint = CATALOG.channel_text("sms_more", "fr")
    assert first.endswith(hint) and second.endswith(hint) or "1. Yes" in second
    for body in [first, second, *rest]:
        assert count_segments(body).segments <= 2
    assert rasa.texts == ["long", "more"]  # the parts came from the route, not from Rasa
    assert "first sentence" in first and "1. Yes\n2. No" in ([second] + rest)[-1]


async def test_stop_words_unsubscribe_and_the_provider_answers_them(channel, rasa, fake):
    async with asgi_client(app_for(channel, rasa)) as client:
        for word in ("STOP", "Arrêt", "توقف", "baja"):
            await sms(client, fake, word)
        await sms(client, fake, "basta", OptOutType="STOP")  # Twilio Advanced Opt-Out keyword
    assert rasa.texts == ["/unsubscribe"] * 5
    # Twilio confirms its own opt-out words (STOP, Advanced Opt-Out keywords) and blocks the
    # number; the other languages' words are ours alone, so the assistant confirms them
    assert len(fake.delivered()) == 3


async def test_without_provider_opt_out_the_assistant_confirms_stop_itself(fake, rasa):
    channel = make_channel(fake, provider_opt_out=False)
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "stop")
    assert rasa.texts == ["/unsubscribe"] and len(fake.delivered()) == 1


async def test_start_help_and_menu_words(channel, rasa, fake):
    async with asgi_client(app_for(channel, rasa)) as client:
        for word in ("START", "ayuda", "Aide", "menu", "القائمة", "help"):
            await sms(client, fake, word)
    assert rasa.texts == ["/greet", "/menu", "/menu", "/menu", "/menu", "/menu"]
    assert len(fake.delivered()) == 6  # Twilio answers START/HELP too; these are ours


async def test_help_gives_the_emergency_contacts_before_the_menu(channel, rasa, fake):
    """HELP is what a person in trouble types first; the menu alone would make them look for
    the numbers (issue: 'HELP on SMS gives the emergency contacts and the menu')."""
    deployment = cached_deployment(Settings.from_env().deployment_file)
    rasa.replies["/menu"] = [{"text": "Menu", "buttons": MENU, "metadata": {"language": "fr"}}]
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "Aide")
        await sms(client, fake, "menu")
        await sms(client, fake, "HELP", OptOutType="HELP")  # Twilio Advanced Opt-Out's HELP
    first, plain, third = [m["Body"] for m in fake.delivered()]
    contacts = deployment.render_contacts("fr")
    assert contacts and first.startswith(sms_friendly(CATALOG.render(
        "utter_emergency_contacts", "fr", contacts=contacts)["text"]))
    assert "Menu\n1. Yes\n2. No" in first and third == first
    assert plain == "Menu\n1. Yes\n2. No"  # MENU is the menu alone


async def test_a_picture_gets_a_polite_text_in_the_conversations_language(channel, rasa, fake):
    rasa.replies["hola"] = [{"text": "Hola", "metadata": {"language": "es"}}]
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "", NumMedia="1", MediaUrl0="https://example.org/m.jpg",
                  MediaContentType0="image/jpeg")
        await sms(client, fake, "hola")
        await sms(client, fake, "", NumMedia="1", MediaUrl0="https://example.org/v.ogg")
        await sms(client, fake, "and a caption", NumMedia="1")
    bodies = [m["Body"] for m in fake.delivered()]
    assert bodies[0] == CATALOG.channel_text("media_unsupported", "en")  # default language
    assert bodies[2] == CATALOG.channel_text("media_unsupported", "es")
    assert rasa.texts == ["hola", "and a caption"]  # pictures alone never reach Rasa


async def test_provider_errors_are_retried_and_the_reply_arrives_once(channel, rasa, fake):
    fake.script = [429, 500, "timeout"]
    fake.slow_seconds = 2.0
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "hello")
    assert [r.answered for r in fake.received] == [429, 500, "timeout", 201]
    assert len(fake.delivered()) == 1


async def test_a_refused_number_is_not_retried_and_not_logged(channel, rasa, fake, caplog):
    caplog.set_level(logging.INFO)
    fake.unsubscribed.add(NUMBER)
    async with asgi_client(app_for(channel, rasa)) as client:
        answer = await sms(client, fake, "hello")
    assert answer.status_code == 200
    assert [r.answered for r in fake.received] == [400]
    assert "not delivered (refused" in caplog.text and "0142" not in caplog.text


async def test_bad_requests_get_clear_errors(channel, rasa, fake):
    async with asgi_client(app_for(channel, rasa)) as client:
        params = {"Body": "hello"}
        no_sender = await client.post("/webhooks/sms/webhook", data=params,
                                      headers=signed(params, fake.auth_token))
        too_long = await sms(client, fake, "x" * 1601)
    assert (no_sender.status_code, no_sender.text) == (400, "'From' is missing")
    assert too_long.status_code == 400 and "1600" in too_long.text
    assert rasa.received == []


async def test_an_oversized_form_is_refused_before_it_is_parsed(channel, rasa, fake):
    """Issue 17 §2: the SMS form is checked for size before parsing. The largest form Twilio
    sends (a 1,600-character Body, here of 4-byte emoji, each percent-encoded) still passes
    the size check (then meets the Body limit); a bigger one gets 413, signature or not."""
    async with asgi_client(app_for(channel, rasa)) as client:
        params = {"From": NUMBER, "Body": "x" * 30_000}
        huge = await client.post("/webhooks/sms/webhook", data=params,
                                 headers=signed(params, fake.auth_token))
        largest = await sms(client, fake, "\U0001F600" * 1600)
        arabic = await sms(client, fake, "ساعدني " * 228)  # 1,596 characters
    assert huge.status_code == 413 and "24576 bytes" in huge.text
    assert largest.status_code == 200
    assert arabic.status_code == 200
    assert len(rasa.received) == 2


def test_credentials_are_checked_and_the_token_never_shown():
    with pytest.raises(ValueError, match="missing auth_token, sender, webhook_url"):
        SmsConfig.from_credentials({"account_sid": "AC" + "1" * 32})
    with pytest.raises(ValueError, match="webhook_url must be the https URL"):
        SmsConfig.from_credentials({"account_sid": "AC1", "auth_token": "s3cret", "sender": "+999",
                                    "webhook_url": "http://helpline.example.org/x"})
    with pytest.raises(ValueError, match="account SID must start with AC") as error:
        SmsConfig.from_credentials({"account_sid": "XX1", "auth_token": "s3cret", "sender": "+999",
                                    "webhook_url": WEBHOOK})
    assert "s3cret" not in str(error.value)
    config = SmsConfig.from_credentials({"account_sid": "AC1", "auth_token": "s3cret",
                                         "sender": "MG" + "2" * 32, "webhook_url": WEBHOOK})
    assert "s3cret" not in repr(config) and config.provider_opt_out is True


def test_keywords_are_consistent():
    keywords = load_keywords()
    assert keywords.payload("  Stop! ") == "/unsubscribe" and keywords.is_provider_stop("QUIT")
    assert keywords.payload("quit") is None  # quit stays the quick-exit word for the model
    assert keywords.payload("yes") is None  # an answer, not Twilio's opt-in
    assert keywords.is_more("Más") and keywords.is_more("المزيد") and not keywords.is_more("more please")


async def test_a_pushed_message_goes_to_the_conversations_route(channel, rasa, fake):
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, fake, "hello")
    conversation = rasa.received[0].sender_id
    push = channel.get_output_channel()
    assert isinstance(push, SmsPushOutput)
    await push.send_text_message(conversation, "A caseworker writes: hello again.")
    await push.send_text_message("unknown-conversation", "lost")
    assert fake.delivered()[-1]["Body"] == "A caseworker writes: hello again."
    assert len(fake.delivered()) == 2


async def test_a_reply_to_a_number_that_opted_out_is_named_in_the_case(fake, rasa, tmp_path,
                                                                       monkeypatch):
    """Twilio refuses every message to a number that sent STOP (or QUIT, END...) with error
    21610 until it writes START. A caseworker's reply must not vanish silently: the open case
    says why, and the reply goes out again after the person's next message."""
    from actions.handoff import ActionRelayCaseworker, ActionRelayToCaseworker
    from bot.cases.queue import User
    from bot.cases.service import REPLIES_BLOCKED, cases_for
    from tests.test_handoff import migrated, run, tracker

    database = migrated(tmp_path)
    monkeypatch.setenv("HELPLINE_DATABASE_URL", database)
    channel = make_channel(fake)
    amina = User("amina")
    try:
        async with asgi_client(app_for(channel, rasa)) as client:
            await sms(client, fake, "hello")
        sender = rasa.received[0].sender_id
        cases = cases_for(database)
        case = cases.open(sender, "sms", "en", "medium")
        cases.claim(case.id, amina)
        cases.record(case.id, "caseworker", "Are you safe to talk?", amina)
        fake.unsubscribed.add(NUMBER)  # the person wrote STOP to Twilio
        _, dispatcher = await asyncio.to_thread(
            run, ActionRelayCaseworker(), tracker(sender, slots={"handoff": "open"}))
        push = channel.get_output_channel()
        for message in dispatcher.messages:
            await push.send_response(sender, message)
            await push.send_response(sender, message)  # a second refusal: one note only
        lines = [line.text for line in cases.transcript(case.id, amina)]
        assert lines[-1] == REPLIES_BLOCKED and lines.count(REPLIES_BLOCKED) == 1
        # counted in the figures (issue 16 §1): the case is marked, nothing else about it
        from bot.figures import SOURCES, count
        from bot.storage import make_engine, session_factory
        engine = make_engine(database)
        with session_factory(engine)() as session:
            table = count(session, SOURCES["cases"], ("replies",))
        engine.dispose()
        assert (table.row_totals.get("blocked"), table.total) == (1, 1)
        fake.unsubscribed.discard(NUMBER)  # START
        _, dispatcher = await asyncio.to_thread(
            run, ActionRelayToCaseworker(),
            tracker(sender, intent="greet", text="start", slots={"handoff": "open"}))
        assert [m["text"] for m in dispatcher.messages] == ["Are you safe to talk?"]
    finally:
        channel.gateway.routes.close()
        forget_sensitive()


async def test_a_message_delivered_again_is_answered_200_and_ignored(channel, rasa, fake):
    """Issue 17 §2: Twilio retries a webhook it thinks failed, and a captured signed request
    can be sent again: a MessageSid seen in the last 24 hours is answered 200 (so Twilio
    stops retrying) with no Rasa turn and no reply; it is kept as a keyed hash only."""
    async with asgi_client(app_for(channel, rasa)) as client:
        first = await sms(client, fake, "hello", MessageSid="SM" + "9" * 32)
        again = await sms(client, fake, "hello", MessageSid="SM" + "9" * 32)
        other = await sms(client, fake, "hello again")
    assert [r.status_code for r in (first, again, other)] == [200, 200, 200]
    assert again.text == first.text  # the empty TwiML answer
    assert [m.text for m in rasa.received] == ["hello", "hello again"]
    assert len(fake.delivered()) == 2
    kept = list(channel.gateway.limits._items)
    assert kept and not any("9999" in key for key in kept)
