"""The hand-off the whole way over real HTTP: a person on the web chat, the real Rasa server
(with its HTTP API and a token) and action server on a migrated database with a caseworker
account, and the console's own relay (console/relay.py) carrying the caseworker's reply and
the close; the page's poll receives both."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pytest

from bot.cases.queue import User
from bot.cases.service import cases_for
from bot.catalog import load_catalog
from channels.sms_text import sms_friendly
from console.relay import RasaRelay, RelayError
from tests.test_handoff import migrated
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop
from tests.utils.channel_clients import (
    send_json, send_sms, send_telegram, telegram_env, telegram_text, wait_until,
    write_credentials,
)
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio

pytestmark = [pytest.mark.model, pytest.mark.slow]
CATALOG = load_catalog()
TOKEN = "handoff-process-test-token"
SESSION = "ab" * 16
AMINA = User("amina")


@pytest.fixture(scope="module")
def fakes():
    """The fake Twilio and Telegram the Rasa server's SMS and Telegram channels send to."""
    twilio, telegram = FakeTwilio().start(), FakeTelegram().start()
    yield SimpleNamespace(twilio=twilio, telegram=telegram)
    twilio.stop()
    telegram.stop()


@pytest.fixture(scope="module")
def rasa(model_path, tmp_path_factory, fakes):
    """(Rasa port, database URL, secrets file) for servers sharing one migrated database and
    secrets; the Rasa server opens every channel (SMS and Telegram to the fakes)."""
    folder = tmp_path_factory.mktemp("handoff-process")
    url = migrated(folder)
    env = {"HELPLINE_DATABASE_URL": url, "HELPLINE_SECRETS_FILE": str(folder / "secrets.json")}
    action_port, rasa_port = free_port(), free_port()
    credentials = write_credentials(folder / "credentials.yml", rasa_port, twilio=fakes.twilio,
                                    telegram=fakes.telegram)
    actions = start_action_server(action_port, folder / "actions.log", **env)
    try:
        server = start_rasa_server(
            model_path, rasa_port, f"http://127.0.0.1:{action_port}/webhook", folder / "rasa.log",
            ("--enable-api", "--auth-token", TOKEN), credentials=str(credentials),
            **env, **telegram_env(fakes.telegram))
    except Exception:
        stop(actions)
        raise
    yield rasa_port, url, folder / "secrets.json"
    stop(server)
    stop(actions)


def say(port: int, message: str) -> list[str]:
    return [m["text"] for m in send_json(port, "webchat", {"sender": SESSION, "message": message})]


def poll(port: int) -> list[str]:
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/webchat/poll",
                                     json.dumps({"sender": SESSION}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return [m["text"] for m in json.load(reply)]


def test_a_person_on_the_web_chat_and_a_caseworker_in_the_console(rasa, monkeypatch):
    port, url, secrets = rasa
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(secrets))  # the console's, the servers'
    say(port, '/change_language{"language": "en"}')  # is it safe to write now?
    say(port, "/affirm")
    assert say(port, "/request_human")[0].startswith("A caseworker from")
    reply = say(port, "/affirm")[0]
    assert reply.startswith(("You are in the queue", "No caseworker is on shift"))
    assert say(port, "I work in a restaurant and they keep my papers") == []  # quiet
    cases = cases_for(url)
    [case] = cases.queue()
    cases.claim(case.id, AMINA)
    assert [line.text for line in cases.transcript(case.id, AMINA)] == [
        "I work in a restaurant and they keep my papers"]

    async def console_side() -> None:
        relay = RasaRelay(f"http://127.0.0.1:{port}", TOKEN)
        wrong = RasaRelay(f"http://127.0.0.1:{port}", "not-the-token")
        try:
            cases.record(case.id, "caseworker", "Hello, I am Amina from the team.", AMINA)
            await relay.send(case, "Hello, I am Amina from the team.")
            with pytest.raises(RelayError, match="HTTP 401"):
                await wrong.send(case, "")
        finally:
            await relay.close()
            await wrong.close()

    asyncio.run(console_side())
    assert poll(port) == ["Hello, I am Amina from the team."]
    assert poll(port) == []
    assert say(port, "thank you") == []  # still with the caseworker

    async def close_it() -> None:
        relay = RasaRelay(f"http://127.0.0.1:{port}", TOKEN)
        try:
            await relay.closed(cases.close(case.id, AMINA, "referred"))
        finally:
            await relay.close()

    asyncio.run(close_it())
    assert poll(port) == [CATALOG.texts["en"]["utter_handoff_closed"]]
    assert say(port, "/menu") == [CATALOG.render("utter_menu", "en")["text"]]  # the assistant is back


def with_buttons(text: str, buttons) -> str:
    """A message and its buttons' titles, one per line."""
    return "\n".join([text] + [b.get("title") or b.get("text") for b in buttons or []])


class Person:
    """A person on SMS, Telegram or the REST channel, and what reached them."""

    def __init__(self, channel: str, port: int, fakes) -> None:
        self.channel, self.port, self.fakes = channel, port, fakes
        self.address = {"sms": "+9995550161", "telegram": "7004001", "helpline": "rest-person"}[channel]
        self.seen = 0  # messages already read

    def say(self, text: str) -> None:
        if self.channel == "sms":
            assert send_sms(self.port, self.fakes.twilio.auth_token, self.address, text) == 200
        elif self.channel == "telegram":
            assert send_telegram(self.port, telegram_text(int(self.address), text)) == 200
        else:
            self.held = [with_buttons(m.get("text", ""), m.get("buttons")) for m in send_json(
                self.port, "helpline", {"sender": self.address, "message": text})]

    def open(self, text: str) -> None:
        """Starts the conversation with ``text``: the first answer asks whether it is safe
        to write now (actions/first_contact.py); "1" (its first button) says yes."""
        self.say(text)
        self.until(CATALOG.texts["en"]["utter_first_contact"].split("{")[0])
        self.say("1")

    def everything(self) -> list[str]:
        """Every text that reached the person so far, in order (on Telegram with its
        buttons' titles on the lines after it, as SMS writes them)."""
        if self.channel == "sms":
            return [m["Body"] for m in self.fakes.twilio.delivered() if m["To"] == self.address]
        if self.channel == "telegram":
            return [with_buttons(m["text"], [b for row in (m.get("reply_markup") or {})
                                             .get("inline_keyboard", []) for b in row])
                    for m in self.fakes.telegram.sent() if str(m["chat_id"]) == self.address]
        self.polled = getattr(self, "polled", []) + getattr(self, "held", [])
        self.held = []
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/helpline/poll",
            json.dumps({"sender": self.address}).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            self.polled += [with_buttons(m.get("text", ""), m.get("buttons"))
                            for m in json.load(reply)]
        return self.polled

    def until(self, fragment: str) -> list[str]:
        """The new messages up to the first containing ``fragment`` (waits for it); SMS
        texts are compared as the SMS channel writes them."""
        if self.channel == "sms":
            fragment = sms_friendly(fragment)

        def arrived():
            texts = self.everything()
            for index in range(self.seen, len(texts)):
                if fragment in texts[index]:
                    return texts[self.seen:index + 1] or [texts[index]]
            return None

        new = wait_until(arrived, what=f"{fragment[:30]!r} on {self.channel}")
        self.seen += len(new)
        return new


@pytest.mark.parametrize("channel", ["sms", "telegram", "helpline"])
def test_a_caseworkers_reply_and_the_close_reach_the_persons_channel(rasa, fakes, channel,
                                                                      monkeypatch):
    """The same hand-off over SMS (to the fake Twilio), Telegram (to the fake Bot API) and
    the REST channel (its poll): the reply goes back the way the person came."""
    port, url, secrets = rasa
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(secrets))
    en = CATALOG.texts["en"]
    person = Person(channel, port, fakes)
    person.open("hello")
    person.until(CATALOG.names["es"])  # the languages, by number or button
    person.say("1")  # English
    person.until(en["utter_language_set"])
    person.say("I want to talk to a person")
    person.until(en["utter_handoff_consent"].split("{")[0])
    person.say("yes")
    answer = person.until("")[-1]
    assert answer.startswith(("You are in the queue", "No caseworker is on shift")), answer
    cases = cases_for(url)
    [case] = [c for c in cases.queue() if c.channel == channel]
    assert (case.language, case.triage_level) == ("en", "none")
    cases.claim(case.id, AMINA)
    person.say("my employer keeps my passport")
    wait_until(lambda: len(cases.transcript(case.id, AMINA)) == 1, what="the relayed message")
    assert cases.transcript(case.id, AMINA)[0].text == "my employer keeps my passport"

    async def console_side() -> None:
        relay = RasaRelay(f"http://127.0.0.1:{port}", TOKEN)
        try:
            cases.record(case.id, "caseworker", "Thank you for telling me. Are you safe now?",
                         AMINA)
            await relay.send(case, "")
            await relay.closed(cases.close(case.id, AMINA, "referred"))
        finally:
            await relay.close()

    asyncio.run(console_side())
    # the reply, then the goodbye; nothing from the assistant in between (it stayed quiet)
    closing = en["utter_handoff_closed"]
    reply, goodbye = person.until(closing[:40])
    assert reply == "Thank you for telling me. Are you safe now?"
    assert goodbye.startswith(sms_friendly(closing) if channel == "sms" else closing)  # + menu
    time.sleep(0.5)
    assert len(person.everything()) == person.seen
    assert cases.open_case_for(case.conversation_id) is None


# A campaign for the subscribers of the test below: any hour, English, SMS and Telegram. Each
# run of the test sends it: the first queues it, a later one adds its new subscriber to it.
CAMPAIGN = """
name: process-test-campaign
texts:
  en: "Fake job offers ask for fees or keep passports. Ask us before you go. STOP or /stop to end."
audience: {languages: [en], channels: [sms, telegram]}
window: {start: "00:00", end: "23:59"}
cap_per_week: 1
"""


def send_campaign(url: str, folder, fakes, monkeypatch) -> None:
    """``helpline campaign send`` of CAMPAIGN to the fake Twilio and Telegram, with the Rasa
    server's credentials file and database."""
    from bot import cli
    from tests.utils.campaigns import any_hour_deployment

    campaign = folder / "campaign.yml"
    campaign.write_text(CAMPAIGN, encoding="utf-8")
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(any_hour_deployment(folder)))  # any hour
    for name, value in telegram_env(fakes.telegram).items():  # the file's ${VARS}
        monkeypatch.setenv(name, value)
    assert cli.main(["campaign", "send", str(campaign), "--credentials",
                     str(folder / "credentials.yml")]) == 0


@pytest.mark.parametrize("channel", ["sms", "telegram"])
def test_subscribing_and_stopping_over_sms_and_telegram(rasa, fakes, channel, monkeypatch):
    """JOIN (/join on Telegram) -> the consent question -> yes: the subscriber is recorded by
    the action server and the channel attaches the address, encrypted; a campaign is sent to
    them (`helpline campaign send` to the fake Twilio or Telegram) and their reply starts a
    normal conversation, the subscription kept; STOP deletes the subscriber and the address
    at once (on Telegram a typed STOP from a subscriber, as /stop). (The campaigns' tables are on the same migrated database.)"""
    from bot.campaigns.service import subscribers_for
    from bot.privacy.keys import load_secrets
    from bot.privacy.pseudonyms import pseudonym

    port, url, secrets = rasa
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(secrets))
    en = CATALOG.texts["en"]
    person = Person(channel, port, fakes)
    person.address = {"sms": "+9995550162", "telegram": "7004002"}[channel]
    conversation = pseudonym(load_secrets(secrets).pseudonym_key, channel, person.address)
    store = subscribers_for(url)
    person.open("hello")
    person.until(CATALOG.names["es"])
    person.say("1")  # English
    person.until(en["utter_language_set"])
    person.say("JOIN" if channel == "sms" else "/join")
    consent = person.until(en["utter_subscribe_consent"].split("{")[0])[-1]
    assert "at most 2 a week" in consent
    assert store.get(conversation) is None  # asking records nothing
    person.say("yes")
    person.until(en["utter_subscribe_done"][:30])
    view = wait_until(lambda: (lambda v: v if v and v.reachable else None)(
        store.get(conversation)), what="the attached address")
    assert store.address(view.id) == person.address and view.language == "en"
    # a campaign message, and the person's reply: a normal conversation
    send_campaign(url, secrets.parent, fakes, monkeypatch)
    message = person.until("Fake job offers")[-1]
    assert message.startswith("Fake job offers") and "/stop" in message
    person.say("what is human trafficking?")  # the assistant answers, as to anyone
    person.until(en["utter_awareness_trafficking"][:40])
    assert store.get(conversation) is not None  # still subscribed
    person.say("STOP")  # as the campaign message says; on Telegram a subscriber's STOP too
    if channel == "telegram":  # on SMS Twilio answers STOP itself (provider_opt_out)
        person.until(en["utter_unsubscribe_done"][:30])
    wait_until(lambda: store.get(conversation) is None, what="the deletion")
