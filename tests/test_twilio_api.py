"""Sending SMS through Twilio's API, against a local fake Twilio over real HTTP: retries on
429, 5xx and timeouts with bounded backoff, permanent refusals at once, nothing identifying in
the logs, and an event loop that keeps turning while a send waits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channels.twilio_api import SendError, TwilioConfig, TwilioSender
from tests.utils.fake_twilio import FakeTwilio

NUMBER = "+999 555 0190"  # fictional (+999 is not assigned)


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


def sender_for(fake, sender="+9995550100", token=None, **options):
    sleeps = []

    async def sleep(seconds):
        sleeps.append(seconds)

    config = TwilioConfig(fake.account_sid, token or fake.auth_token, sender, api_url=fake.url,
                          timeout_seconds=options.pop("timeout", 5.0))
    client = TwilioSender(config, sleep=sleep, **options)
    client.sleeps = sleeps
    return client


async def test_a_message_is_posted_with_basic_auth_and_returns_its_sid(fake):
    client = sender_for(fake)
    sent = await client.send(NUMBER, "Hello from the helpline")
    await client.close()
    assert sent.sid.startswith("SM") and sent.attempts == 1
    assert fake.delivered() == [{"To": NUMBER, "Body": "Hello from the helpline", "From": "+9995550100"}]


async def test_a_messaging_service_is_named_as_such(fake):
    client = sender_for(fake, sender="MG" + "1" * 32)
    await client.send(NUMBER, "Hi")
    await client.close()
    assert fake.delivered()[0]["MessagingServiceSid"] == "MG" + "1" * 32


async def test_429_and_5xx_are_retried_with_bounded_backoff(fake):
    fake.script = [429, 500, 503]
    fake.retry_after = "30"  # Twilio asks for 30 s; the sender waits at most max_delay
    client = sender_for(fake, base_delay=0.5, max_delay=8.0)
    sent = await client.send(NUMBER, "Hi")
    await client.close()
    assert sent.attempts == 4
    assert client.sleeps == [8.0, 1.0, 2.0]  # Retry-After capped, then 0.5 * 2^n
    assert [r.answered for r in fake.received] == [429, 500, 503, 201]


async def test_timeouts_are_retried_then_reported_as_temporary(fake):
    fake.script = ["timeout", "timeout", "timeout"]
    fake.slow_seconds = 1.0
    client = sender_for(fake, timeout=0.2, max_attempts=3)
    with pytest.raises(SendError) as failure:
        await client.send(NUMBER, "Hi")
    await client.close()
    assert not failure.value.permanent and failure.value.attempts == 3
    assert "TimeoutError" in str(failure.value)
    assert len(client.sleeps) == 2


async def test_a_number_that_sent_stop_is_refused_permanently_without_retrying(fake):
    fake.unsubscribed.add(NUMBER)
    client = sender_for(fake)
    with pytest.raises(SendError) as failure:
        await client.send(NUMBER, "Hi")
    await client.close()
    assert failure.value.permanent and failure.value.code == 21610 and failure.value.status == 400
    assert len(fake.received) == 1 and client.sleeps == []


async def test_a_wrong_token_is_a_permanent_error(fake):
    client = sender_for(fake, token="not-the-token")
    with pytest.raises(SendError) as failure:
        await client.send(NUMBER, "Hi")
    await client.close()
    assert failure.value.permanent and failure.value.code == 20003


async def test_an_unreachable_api_is_temporary(fake):
    fake.stop()
    client = sender_for(fake, max_attempts=2)
    with pytest.raises(SendError) as failure:
        await client.send(NUMBER, "Hi")
    await client.close()
    assert not failure.value.permanent and "ClientConnectorError" in str(failure.value)


async def test_logs_never_name_the_number_or_the_text(fake, caplog):
    fake.script = [500]
    fake.unsubscribed.add("+9995550191")
    client = sender_for(fake)
    with caplog.at_level(logging.DEBUG, logger="channels.twilio_api"):
        await client.send(NUMBER, "my name is Temperance")
        with pytest.raises(SendError):
            await client.send("+9995550191", "my name is Temperance")
    await client.close()
    text = caplog.text
    assert "HTTP 500" in text and "error 21610" in text
    for secret in ("0190", "0191", "Temperance", fake.auth_token):
        assert secret not in text


async def test_the_event_loop_keeps_turning_while_a_send_waits(fake):
    fake.script = ["timeout"]
    fake.slow_seconds = 0.5
    client = sender_for(fake, timeout=5.0)
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await client.send(NUMBER, "Hi")
    ticker.cancel()
    await client.close()
    assert ticks >= 10  # about 25 ticks in 0.5 s: nothing blocked the loop


@pytest.mark.parametrize("config, problem", [
    (dict(account_sid="XX1", auth_token="t", sender="+9995550100"), "must start with AC"),
    (dict(account_sid="AC1", auth_token="", sender="+9995550100"), "auth token is empty"),
    (dict(account_sid="AC1", auth_token="t", sender="9995550100"), "sender must be"),
    (dict(account_sid="AC1", auth_token="t", sender="+9995550100", api_url="http://example.org"),
     "must be https"),
])
def test_bad_settings_are_named(config, problem):
    with pytest.raises(ValueError, match=problem):
        TwilioConfig(**config)


def test_the_token_is_not_shown_by_repr():
    assert "secret-token" not in repr(TwilioConfig("AC1", "secret-token", "+9995550100"))


def test_at_least_one_attempt():
    with pytest.raises(ValueError, match="at least 1"):
        TwilioSender(TwilioConfig("AC1", "t", "+9995550100"), max_attempts=0)
