"""Replies a provider did not take go out once it takes messages again: once, in order.

The channels over real HTTP to the fake Twilio and Telegram APIs, which answer 5xx, 429 and
time out for a while (``FakeTwilio.storm``); the ledger of delayed replies on a migrated
SQLite database; the replies kept in the encrypted reply route (issue 17 §5 "provider
storms"). Twilio documents 429 ("Too Many Requests") and 5xx as worth trying again; Telegram's
Bot API answers 429 with ``retry_after`` and 5xx when it is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import sqlalchemy as sa

from bot.delayed import DelayedReplies
from bot.privacy import erasure
from bot.storage import make_engine, session_factory, upgrade
from channels.redelivery import Redelivery
from tests.test_sms_channel import NUMBER, FakeRasa, app_for, make_channel, sms
from tests.test_telegram_channel import CHAT_ID, Rasa, message, serving, update
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio
from tests.utils.sanic_asgi import asgi_client

STORM = (503, 429, 500, "timeout")


@pytest.fixture
def ledger(tmp_path):
    return _ledger(f"sqlite:///{tmp_path / 'helpline.db'}")


def _ledger(url: str):
    engine = make_engine(url)
    upgrade(engine)
    return DelayedReplies(session_factory(engine))


@pytest.fixture
def twilio():
    server = FakeTwilio(slow_seconds=2.0).start()  # a "timeout" answers after the client gave up
    yield server
    server.stop()


def sms_channel(twilio, ledger, max_wait: float = 3600):
    channel = make_channel(twilio)
    channel.redelivery = Redelivery("sms", lambda: channel.gateway.routes, channel._send_part,
                                    refused=channel._refused, ledger=lambda: ledger, tick=0.05,
                                    max_wait_seconds=lambda: max_wait)
    return channel


async def until(condition, seconds: float = 20.0, every: float = 0.05) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time given"
        await asyncio.sleep(every)


async def redeliver_until(redelivery: Redelivery, condition, seconds: float = 30.0) -> None:
    """Rounds of the redelivery loop, as the running server makes them, until ``condition``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not delivered in time"
        await redelivery.redeliver()
        await asyncio.sleep(redelivery.tick)


def bodies(twilio: FakeTwilio) -> list[str]:
    return [m["Body"] for m in twilio.delivered()]


async def test_sms_replies_during_a_storm_arrive_after_it_once_and_in_order(twilio, ledger):
    channel, rasa = sms_channel(twilio, ledger), FakeRasa()
    twilio.storm(1.5, STORM)
    async with asgi_client(app_for(channel, rasa)) as client:
        for text in ("one", "two", "three"):
            assert (await sms(client, twilio, text)).status_code == 200
        await storm_then_after(channel, twilio, ledger, client)


async def storm_then_after(channel, twilio, ledger, client) -> None:
    assert bodies(twilio) == []  # nothing got through the storm
    conversation = channel.gateway.conversation_id(NUMBER)
    route = await channel.gateway.routes.get(conversation)
    assert len(route.undelivered) == 3  # kept, encrypted, in the route
    summary = ledger.summary()
    assert summary.waiting == {"sms": 1} and ledger.waiting_since(conversation)[0] == "sms"
    # the first reply spent the sender's retries; the next ones queued at once behind it
    assert twilio.storm_answers == 4

    await redeliver_until(channel.redelivery, lambda: len(bodies(twilio)) == 3)
    assert bodies(twilio) == ["ok: one\n1. Yes\n2. No", "ok: two\n1. Yes\n2. No",
                              "ok: three\n1. Yes\n2. No"]
    assert twilio.deliveries[NUMBER] == 3  # none twice
    assert (await channel.gateway.routes.get(conversation)).undelivered == ()
    summary = ledger.summary()
    assert summary.waiting == {} and summary.delivered_late == {"sms": 1}
    assert summary.longest["sms"] >= dt.timedelta(seconds=1)
    assert ledger.waiting_since(conversation) is None
    with ledger._sessions() as session:  # the finished row no longer names the conversation
        assert session.execute(sa.text("SELECT conversation_id, parts FROM delayed_replies")
                               ).all() == [(None, 3)]

    await sms(client, twilio, "four")  # after the storm: at once
    assert bodies(twilio)[-1].startswith("ok: four")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_rasa_replicas_send_the_waiting_replies_once(twilio, tmp_path, request,
                                                               database):
    ledger = _ledger(f"sqlite:///{tmp_path / 'helpline.db'}" if database == "sqlite"
                     else request.getfixturevalue("postgres_url"))
    channel, rasa = sms_channel(twilio, ledger), FakeRasa()
    twilio.storm(0.5, (503,))
    async with asgi_client(app_for(channel, rasa)) as client:
        for text in ("one", "two"):
            await sms(client, twilio, text)
    await until(lambda: not twilio.storming())
    other = Redelivery("sms", lambda: channel.gateway.routes, channel._send_part,
                       ledger=lambda: ledger, tick=0.05)
    twilio.delay_seconds = 0.3  # both replicas look while the first send is under way
    await asyncio.gather(channel.redelivery.redeliver(), other.redeliver(),
                         channel.redelivery.redeliver(), other.redeliver())
    assert [b.split("\n")[0] for b in bodies(twilio)] == ["ok: one", "ok: two"]
    assert twilio.deliveries[NUMBER] == 2
    assert ledger.summary().delivered_late == {"sms": 1}
    # one waiting row per conversation: the partial unique index, on both databases
    assert ledger.note("sms", "x" * 32, 5) and not ledger.note("sms", "x" * 32, 5)
    await other.stop()


async def test_a_quick_exit_while_replies_wait_erases_them_and_their_row(twilio, ledger):
    channel, rasa = sms_channel(twilio, ledger), FakeRasa()
    twilio.storm(0.5, (500,))
    async with asgi_client(app_for(channel, rasa)) as client:  # the server's loop runs
        await sms(client, twilio, "one")
        conversation = channel.gateway.conversation_id(NUMBER)
        assert ledger.waiting_since(conversation) is not None
        await erasure.erase(conversation)  # what the tracker store does on EXIT or FORGET ME
        assert await channel.gateway.routes.get(conversation) is None
        assert ledger.waiting_since(conversation) is None and ledger.summary().waiting == {}
        await until(lambda: not twilio.storming())
        await channel.redelivery.redeliver()
        await asyncio.sleep(0.3)  # rounds of the server's own loop
    assert bodies(twilio) == []


async def test_replies_that_waited_too_long_are_dropped_not_sent_late(twilio, ledger):
    channel, rasa = sms_channel(twilio, ledger, max_wait=0.2), FakeRasa()
    twilio.storm(0.5, (503,))
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, twilio, "one")
    await until(lambda: not twilio.storming())
    await channel.redelivery.redeliver()
    assert bodies(twilio) == []
    conversation = channel.gateway.conversation_id(NUMBER)
    assert (await channel.gateway.routes.get(conversation)).undelivered == ()
    assert ledger.summary().dropped == {"sms": 1}
    await channel.redelivery.stop()


async def test_a_number_that_opted_out_meanwhile_gets_nothing_more(twilio, ledger):
    channel, rasa = sms_channel(twilio, ledger), FakeRasa()
    twilio.storm(0.5, (503,))
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, twilio, "one")
        await sms(client, twilio, "two")
    await until(lambda: not twilio.storming())
    twilio.unsubscribed.add(NUMBER)  # Twilio's error 21610: a refusal, not worth a retry
    await channel.redelivery.redeliver()
    assert bodies(twilio) == []
    assert [r.answered for r in twilio.received if not isinstance(r.answered, str)
            and r.answered == 400] == [400]  # the first one refused, the second not tried
    conversation = channel.gateway.conversation_id(NUMBER)
    assert (await channel.gateway.routes.get(conversation)).undelivered == ()
    assert ledger.summary().dropped == {"sms": 1}
    await channel.redelivery.stop()


async def test_without_a_storm_nothing_is_kept_and_no_row_is_written(twilio, ledger):
    channel, rasa = sms_channel(twilio, ledger), FakeRasa()
    twilio.script = [503]  # one failure the sender's own retry covers
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, twilio, "one")
    assert len(bodies(twilio)) == 1
    assert ledger.summary().waiting == {} and ledger.summary().delivered_late == {}
    await channel.redelivery.stop()


@pytest.fixture
def telegram():
    server = FakeTelegram(slow_seconds=1.5).start()
    yield server
    server.stop()


async def test_telegram_replies_during_a_storm_arrive_after_it_with_their_buttons(telegram, ledger):
    rasa = Rasa()
    async with serving(telegram, rasa) as served:
        channel = served.channel
        await channel.redelivery.stop()  # the server's own loop: this test makes the rounds
        channel.redelivery = Redelivery("telegram", lambda: channel.gateway.routes,
                                        channel._send_unit, ledger=lambda: ledger, tick=0.05)
        telegram.storm(1.5, STORM)
        await served.post(update(message=message("hello")))
        await served.post(update(message=message("again")))
        await served.settle()
        assert telegram.sent() == []
        conversation = channel.gateway.conversation_id(str(CHAT_ID))
        assert len((await channel.gateway.routes.get(conversation)).undelivered) == 4
        await redeliver_until(channel.redelivery, lambda: len(telegram.sent()) == 4)
        sent = telegram.sent()
        assert [p["text"] for p in sent] == [rasa.replies[0]["text"], rasa.replies[1]["text"]] * 2
        markup = sent[0]["reply_markup"]
        markup = json.loads(markup) if isinstance(markup, str) else markup
        assert [b["text"] for row in markup["inline_keyboard"] for b in row] == [
            "S'informer", "Un service"]
        assert telegram.deliveries[str(CHAT_ID)] == 4
        route = await channel.gateway.routes.get(conversation)
        assert route.undelivered == ()
        bot_ids = {i for i, m in telegram.chats[str(CHAT_ID)].items() if m["from_bot"]}
        assert bot_ids <= {i for i, _ in route.messages}  # a quick exit can still delete them
        assert ledger.summary().delivered_late == {"telegram": 1}


async def test_a_caseworker_reply_that_waited_too_long_goes_back_to_its_case(twilio, tmp_path,
                                                                           monkeypatch):
    """Dropped, not lost: the reply waits in its case, undelivered, for the person's next
    message (``Cases.undeliver``), as after any reply that could not be sent."""
    from bot.cases.queue import Cases, User
    from bot.privacy.keys import create_secrets_file, load_secrets
    from channels.sms import SmsPushOutput
    from tests.utils.campaigns import helpline_database

    with helpline_database(tmp_path, monkeypatch) as sessions:
        create_secrets_file(tmp_path / "secrets.json")
        cases = Cases(sessions, load_secrets(tmp_path / "secrets.json").fernet())
        channel, rasa = sms_channel(twilio, DelayedReplies(sessions), max_wait=0.2), FakeRasa()
        async with asgi_client(app_for(channel, rasa)) as client:
            await sms(client, twilio, "hello")  # the person's route
        conversation = channel.gateway.conversation_id(NUMBER)
        case = cases.open(conversation, "sms", "en", "high")
        cases.claim(case.id, User("amina", False))
        reply = "I am a caseworker, I am here."
        cases.record(case.id, "caseworker", reply, User("amina", False))
        assert cases.take_replies(conversation) == [reply]  # what the relay action does

        twilio.storm(0.5, (503,))
        await SmsPushOutput(channel).send_response(conversation, {"text": reply})
        await until(lambda: not twilio.storming())
        await asyncio.sleep(0.3)
        await channel.redelivery.redeliver()
        assert bodies(twilio) == ["ok: hello\n1. Yes\n2. No"]  # the reply was not sent late
        assert cases.take_replies(conversation) == [reply]  # it waits in its case again
        assert DelayedReplies(sessions).summary().dropped == {"sms": 1}
        await channel.redelivery.stop()


async def test_only_the_replies_that_waited_too_long_are_dropped(twilio, ledger):
    """Each reply counts its own wait: one kept an hour ago is dropped, one kept a minute ago
    behind it still goes out."""
    channel, rasa = sms_channel(twilio, ledger, max_wait=3600), FakeRasa()
    now = [1_000_000.0]
    channel.redelivery._clock = lambda: now[0]
    twilio.storm(0.5, (503,))
    async with asgi_client(app_for(channel, rasa)) as client:
        await sms(client, twilio, "old")
        now[0] += 3590
        await sms(client, twilio, "new")
    now[0] += 20  # "old" waited 3,610 s, "new" 20 s
    await until(lambda: not twilio.storming())
    await channel.redelivery.redeliver()
    assert [b.split("\n")[0] for b in bodies(twilio)] == ["ok: new"]
    assert ledger.summary().delivered_late == {"sms": 1}
    await channel.redelivery.stop()
