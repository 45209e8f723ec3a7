"""SMS the whole way over real HTTP: a signed Twilio webhook into a real Rasa server process
(trained model, real action server), the reply out to the fake Twilio Messages API."""

from __future__ import annotations

import time

import pytest

from bot.catalog import load_catalog
from channels.segments import count_segments
from channels.sms_text import sms_friendly
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop
from tests.utils.channel_clients import send_sms, write_credentials
from tests.utils.fake_twilio import FakeTwilio

pytestmark = [pytest.mark.model, pytest.mark.slow]
CATALOG = load_catalog()
NUMBER = "+9995550177"  # fictional (+999 is not assigned)


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    """(Rasa port, fake Twilio) for a Rasa server with the SMS channel."""
    logs = tmp_path_factory.mktemp("sms")
    fake = FakeTwilio().start()
    action_port, rasa_port = free_port(), free_port()
    credentials = write_credentials(logs / "credentials.yml", rasa_port, twilio=fake)
    actions = start_action_server(action_port, logs / "actions.log")
    try:
        rasa = start_rasa_server(model_path, rasa_port, f"http://127.0.0.1:{action_port}/webhook",
                                 logs / "rasa.log", credentials=str(credentials))
    except Exception:
        stop(actions)
        fake.stop()
        raise
    yield rasa_port, fake
    stop(rasa)
    stop(actions)
    fake.stop()


def send(port: int, fake: FakeTwilio, body: str, signature: str | None = None) -> int:
    return send_sms(port, fake.auth_token, NUMBER, body, signature)


def replies_after(fake: FakeTwilio, count: int, seconds: float = 30) -> list[str]:
    """The bodies delivered once there are more than ``count`` (sending is in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        delivered = fake.delivered()
        if len(delivered) > count:
            time.sleep(0.3)  # let a turn's other sends land
            return [m["Body"] for m in fake.delivered()[count:]]
        time.sleep(0.1)
    raise AssertionError(f"no reply within {seconds} s")


def test_a_conversation_by_sms(server):
    port, fake = server
    assert send(port, fake, "hello") == 200
    [safe] = replies_after(fake, 0)  # first: is it safe to write now? (whole, in one SMS)
    question = CATALOG.render("utter_first_contact", "en", "sms")
    assert safe == sms_friendly(question["text"]) + "\n1. Yes\n2. Not now"
    assert "write EXIT, then delete this SMS thread" in safe
    assert all(m["To"] == NUMBER for m in fake.delivered())

    assert send(port, fake, "1") == 200  # yes: the greeting is answered
    [languages] = replies_after(fake, 1)
    assert "1. English" in languages and "4. Español" in languages

    assert send(port, fake, "2") == 200  # Français, by its number
    [chosen] = replies_after(fake, 2)
    assert sms_friendly(CATALOG.texts["fr"]["utter_language_set"]) in chosen
    assert "1. " + sms_friendly(CATALOG.buttons["fr"]["learn"]) in chosen

    fake.script = [429, 503]  # the provider is busy, then briefly down: the reply still comes
    assert send(port, fake, "1") == 200  # learn how to stay safe
    [info] = replies_after(fake, 3)
    assert count_segments(info).segments <= 2
    assert info.endswith(sms_friendly(CATALOG.channel_text("sms_more", "fr")))
    assert [r.answered for r in fake.received[-3:]] == [429, 503, 201]

    assert send(port, fake, "PLUS") == 200  # the rest of that answer
    [rest] = replies_after(fake, 4)
    assert rest != info and count_segments(rest).segments <= 2


def test_stop_gets_no_reply_and_a_forged_request_is_refused(server):
    port, fake = server
    before = len(fake.delivered())
    assert send(port, fake, "STOP") == 200
    assert send(port, fake, "hello", signature="forged") == 403
    time.sleep(3)
    assert len(fake.delivered()) == before  # Twilio answers STOP itself
