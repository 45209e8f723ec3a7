"""The campaign dispatcher against the fake Twilio and Telegram APIs over real HTTP: the token
buckets (rate, burst, per chat, hold), two dispatchers on one database never sending a row
twice, the sending window in the subscriber's local time, the weekly cap across campaigns, 429
(Retry-After honoured), 5xx and timeouts retried with backoff, permanent failures removing the
subscriber, the last attempt failing without removing, a subscriber gone before sending, a
subscriber whose consent expired (opted out and deleted, by the default 12 months or the
deployment's ``campaigns.consent_months``), leases taken back, lease owners (a dispatcher
frozen past its lease sends nothing more of its rows, renews none and writes no outcome over the
dispatcher that took them back; a row whose lease ran out unrenewed is not sent), idempotency
keys, bad credentials stopping everything, the NGO's channel post, and logs without addresses
or texts.
The outbox rows are written by ``tests/utils/campaigns.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time

import pytest
import sqlalchemy as sa

from bot.campaigns.definition import CampaignDefinition
from bot.campaigns.dispatch import (
    BASE_DELAY, MAX_DELAY, DispatchError, Dispatcher, Limits, _write_from_values, backoff,
)
from bot.campaigns.models import OutboxMessage
from bot.campaigns.ratelimit import KeyedLimiter, TokenBucket
from bot.campaigns.senders import SmsSender, TelegramSender
from bot.campaigns.subscribers import add_months
from bot.services.models import Place
from channels.twilio_api import TwilioConfig
from tests.utils.campaigns import NOW, TEXTS, CampaignDb, aware, definition
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio

UNLIMITED = Limits(sms_per_second=None, telegram_per_second=None)


# -- fixtures and helpers ----------------------------------------------------------------------

class Clock:
    """UTC now for the dispatcher: a chosen instant that moves with real time (``frozen``:
    stands still), and ``advance`` jumps."""

    def __init__(self, start: dt.datetime = NOW, frozen: bool = False) -> None:
        self.start, self.frozen = start, frozen
        self.t0 = time.monotonic()
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        moving = dt.timedelta(seconds=0 if self.frozen else time.monotonic() - self.t0)
        return self.start + moving + self.offset

    def advance(self, **delta) -> None:
        self.offset += dt.timedelta(**delta)


class FakeTime:
    """A monotonic clock and a sleep that only moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def twilio():
    server = FakeTwilio(retry_after="1").start()
    yield server
    server.stop()


@pytest.fixture
def telegram():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path):
    database = CampaignDb(f"sqlite:///{tmp_path}/campaigns.db")
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/campaigns.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    database = CampaignDb(url)
    yield database
    database.close()


def senders(twilio, telegram, auth_token=None) -> dict:
    config = TwilioConfig(twilio.account_sid, auth_token or twilio.auth_token, "+9995550100",
                          api_url=twilio.url, timeout_seconds=2.0)
    return {"twilio": SmsSender(config), "telegram": TelegramSender(telegram.token, telegram.api_url,
                                                                     timeout=2.0)}


async def dispatch(db, twilio, telegram, campaign=None, until_done=True, auth_token=None,
                   **options) -> Dispatcher:
    options.setdefault("clock", Clock())
    options.setdefault("limits", UNLIMITED)
    options.setdefault("default_timezone", "Africa/Lagos")
    made = senders(twilio, telegram, auth_token)
    dispatcher = Dispatcher(db.sessions, db.subscribers, made, **options)
    try:
        await dispatcher.run(campaign, until_done=until_done)
    finally:
        for sender in made.values():
            await sender.close()
    return dispatcher


def add_place(db, code: str, country: str) -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.insert(Place.__table__).values(
            code=code, kind="town", country=country, admin1_pcode="", admin2_pcode="", lat=0.0,
            lon=0.0))


# -- token buckets -----------------------------------------------------------------------------

async def test_a_bucket_gives_its_rate_after_its_burst():
    fake = FakeTime()
    bucket = TokenBucket(10, burst=1, clock=fake.clock, sleep=fake.sleep)
    for _ in range(21):
        await bucket.acquire()
    assert fake.now == pytest.approx(2.0)  # the first at once, then one every 0.1 s

    fake = FakeTime()
    bucket = TokenBucket(10, burst=5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        await bucket.acquire()
    assert fake.now == 0.0  # a full bucket: five at once
    await bucket.acquire()
    assert fake.now == pytest.approx(0.1)
    fake.now += 60  # idle a minute: full again, but never more than the burst
    for _ in range(5):
        assert bucket.try_acquire()
    assert not bucket.try_acquire()
    assert bucket.wait_time() == pytest.approx(0.1)


async def test_a_hold_pauses_the_bucket_and_no_limit_never_waits():
    fake = FakeTime()
    bucket = TokenBucket(100, burst=10, clock=fake.clock, sleep=fake.sleep)
    await bucket.acquire()
    bucket.hold(3.0)  # a 429 with Retry-After: 3
    assert not bucket.try_acquire()
    await bucket.acquire()
    assert fake.now >= 3.0
    fake = FakeTime()
    free = TokenBucket(None, clock=fake.clock, sleep=fake.sleep)
    for _ in range(1000):
        await free.acquire()
    assert fake.sleeps == [] and free.unlimited
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(5, burst=0.5)


async def test_waiters_are_served_in_order_at_the_rate():
    bucket = TokenBucket(50, burst=1)
    order: list[int] = []

    async def take(index: int) -> None:
        await bucket.acquire()
        order.append(index)

    started = time.monotonic()
    await asyncio.gather(*(take(i) for i in range(26)))
    elapsed = time.monotonic() - started
    assert order == list(range(26))
    assert 0.45 <= elapsed <= 1.5  # 25 intervals of 20 ms


async def test_each_chat_has_its_own_bucket_and_idle_chats_are_forgotten():
    fake = FakeTime()
    chats = KeyedLimiter(1, clock=fake.clock, sleep=fake.sleep, sweep_every=10)
    await chats.acquire("a")
    await chats.acquire("b")
    assert fake.now == 0.0
    await chats.acquire("a")
    assert fake.now == pytest.approx(1.0)  # one message a second to the same chat
    await chats.acquire("b")
    assert fake.now == pytest.approx(1.0)  # b's second came due meanwhile
    await chats.acquire("a")
    assert fake.now == pytest.approx(2.0)
    fake.now += 100
    await chats.acquire("c")
    assert len(chats) == 1  # a and b were full again: forgotten


async def test_the_dispatcher_keeps_each_providers_rate(db, twilio, telegram):
    campaign = db.campaign("rates")
    db.queue(campaign, db.subscribe(20, "sms") + db.subscribe(45, "telegram"))
    dispatcher = await dispatch(db, twilio, telegram,
                                limits=Limits(sms_per_second=10, telegram_per_second=15))
    assert dispatcher.stats.sent == 65 and db.states() == {"sent": 65}
    for times, limit in (([r.at for r in twilio.received], 10), ([c.at for c in telegram.calls], 15)):
        span = max(times) - min(times)
        burst = max(1.0, limit / 10)
        achieved = (len(times) - burst) / span
        assert 0.8 * limit <= achieved <= 1.1 * limit, (achieved, limit)


async def test_one_chat_gets_at_most_one_message_a_second(db, twilio, telegram):
    [person] = db.subscribe(1, "telegram")
    others = db.subscribe(5, "telegram", start=100)
    first, second = db.campaign("first"), db.campaign("second")
    db.queue(first, [person] + others)
    db.queue(second, [person])
    await dispatch(db, twilio, telegram)
    mine = sorted(c.at for c in telegram.calls if c.params["chat_id"] == person.address)
    assert len(mine) == 2 and mine[1] - mine[0] >= 0.95
    assert db.states() == {"sent": 7}


# -- claiming ----------------------------------------------------------------------------------

async def test_two_dispatchers_on_one_database_never_send_a_row_twice(any_db, twilio, telegram):
    campaign = any_db.campaign("race")
    rows = any_db.queue(campaign, any_db.subscribe(200, "sms") + any_db.subscribe(200, "telegram"))
    other = CampaignDb(any_db.url, route_key=any_db.route_key, migrate=False)
    try:
        small = Limits(sms_per_second=None, telegram_per_second=None, max_in_flight=8)
        made = [senders(twilio, telegram), senders(twilio, telegram)]
        dispatchers = [Dispatcher(d.sessions, d.subscribers, s, clock=Clock(), limits=small,
                                  batch=8, default_timezone="UTC")
                       for d, s in zip((any_db, other), made)]
        await asyncio.gather(*(d.run() for d in dispatchers))
        for pair in made:
            for sender in pair.values():
                await sender.close()
    finally:
        other.close()
    delivered = twilio.totals()[0] + telegram.totals()[0]
    requests = twilio.totals()[2] + telegram.totals()[2]
    assert delivered == rows and requests == rows  # not even a repeat with the same key
    assert twilio.repeats == telegram.repeats == 0
    assert all(d.stats.sent > 0 for d in dispatchers)  # both took part
    assert sum(d.stats.sent for d in dispatchers) == rows
    assert any_db.states() == {"sent": rows}


def test_concurrent_claims_are_disjoint(any_db):
    campaign = any_db.campaign("claims")
    rows = any_db.queue(campaign, any_db.subscribe(600, "sms"))
    databases = [any_db] + [CampaignDb(any_db.url, route_key=any_db.route_key, migrate=False)
                            for _ in range(5)]
    claimed: list[list[int]] = [[] for _ in databases]
    errors: list[BaseException] = []
    start = threading.Barrier(len(databases))

    def claim(index: int) -> None:
        database = databases[index]
        dispatcher = Dispatcher(database.sessions, database.subscribers, {}, clock=Clock())
        start.wait()
        try:
            while True:
                now = NOW + dt.timedelta(minutes=1)
                got, _ = dispatcher._db_claim(("sms",), 17, now, now + dt.timedelta(minutes=5))
                if not got:
                    return
                claimed[index] += [row[0] for row in got]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(databases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for database in databases[1:]:
        database.close()
    assert errors == []
    every = [i for ids in claimed for i in ids]
    assert len(every) == len(set(every)) == rows  # each row claimed exactly once
    assert sum(1 for ids in claimed if ids) >= 2
    assert any_db.states() == {"sending": rows}


# -- window and weekly cap ---------------------------------------------------------------------

async def test_the_window_is_kept_in_each_subscribers_local_time(db, twilio, telegram):
    add_place(db, "test-bogota", "CO")  # a gazetteer place: its country's time zone
    lagos = db.subscribe(1, "sms", area="ng-maiduguri")[0]  # UTC+1, from the code's country
    bogota = db.subscribe(1, "sms", area="test-bogota", start=1)[0]  # UTC-5
    unknown = db.subscribe(1, "telegram", area=None, start=2)[0]  # the deployment's: Kyiv, UTC+2
    campaign = db.campaign("window", window=("09:00", "19:00"))
    six = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.timezone.utc)
    db.queue(campaign, [lagos, bogota, unknown], due=six)
    clock = Clock(six, frozen=True)
    dispatcher = await dispatch(db, twilio, telegram, clock=clock, until_done=False,
                                default_timezone="Europe/Kyiv")
    assert dispatcher.stats.deferred == 3 and dispatcher.stats.sent == 0
    assert twilio.totals()[2] == telegram.totals()[2] == 0
    due = {r["subscriber_id"]: aware(r["next_attempt_at"]) for r in db.rows()}
    utc = dt.timezone.utc
    assert due == {lagos.id: dt.datetime(2026, 11, 26, 8, 0, tzinfo=utc),
                   bogota.id: dt.datetime(2026, 11, 26, 14, 0, tzinfo=utc),
                   unknown.id: dt.datetime(2026, 11, 26, 7, 0, tzinfo=utc)}
    assert {r["error"] for r in db.rows()} == {"window"} and db.states() == {"pending": 3}

    clock.advance(hours=2, minutes=30)  # 08:30 UTC: 09:30 in Lagos, 10:30 in Kyiv, 03:30 in Bogota
    await dispatch(db, twilio, telegram, clock=clock, until_done=False,
                   default_timezone="Europe/Kyiv")
    assert twilio.delivered_to(lagos.address) == 1 and telegram.delivered_to(unknown.address) == 1
    assert twilio.delivered_to(bogota.address) == 0
    clock.advance(hours=11)  # 19:30 UTC: 14:30 in Bogota, closed in Lagos
    await dispatch(db, twilio, telegram, clock=clock, until_done=False,
                   default_timezone="Europe/Kyiv")
    assert twilio.delivered_to(bogota.address) == 1 and db.states() == {"sent": 3}


async def test_a_window_that_closes_while_a_message_waits_defers_it(db, twilio, telegram):
    [person] = db.subscribe(1, "telegram")  # no area: the deployment's time zone, Lagos (UTC+1)
    campaign = db.campaign("closing", window=("09:00", "19:00"))
    almost = dt.datetime(2026, 11, 26, 17, 59, 59, 500000, tzinfo=dt.timezone.utc)  # 18:59:59.5
    db.queue(campaign, [person], due=almost - dt.timedelta(minutes=1))
    made = senders(twilio, telegram)
    dispatcher = Dispatcher(db.sessions, db.subscribers, made, clock=Clock(almost),
                            limits=UNLIMITED, default_timezone="Africa/Lagos")
    dispatcher.lanes["telegram"].bucket.hold(1.0)  # as after a 429: the window closes meanwhile
    await dispatcher.run(until_done=False)
    for sender in made.values():
        await sender.close()
    row = db.row_of(person, campaign)
    assert (row["state"], row["error"], row["attempts"]) == ("pending", "window", 0)
    assert aware(row["next_attempt_at"]) == dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.timezone.utc)
    assert telegram.calls == []


async def test_the_weekly_cap_counts_every_campaign_and_waits_for_the_oldest(db, twilio, telegram):
    earlier = db.campaign("earlier", queued_at=NOW - dt.timedelta(days=10))
    once, twice, long_ago, two_new = db.subscribe(4, "sms")
    db.sent_before(once, earlier, NOW - dt.timedelta(days=3))
    db.sent_before(twice, earlier, NOW - dt.timedelta(days=6), "a")
    db.sent_before(twice, earlier, NOW - dt.timedelta(days=2), "b")
    db.sent_before(long_ago, earlier, NOW - dt.timedelta(days=8))
    cap_one = db.campaign("cap-one", cap_per_week=1)
    cap_two = db.campaign("cap-two", cap_per_week=2)
    also_one = db.campaign("also-one", cap_per_week=1)
    db.queue(cap_one, [once, long_ago, two_new])
    db.queue(cap_two, [twice])
    db.queue(also_one, [two_new])
    clock = Clock(NOW, frozen=True)
    dispatcher = await dispatch(db, twilio, telegram, clock=clock, until_done=False)
    assert twilio.delivered_to(long_ago.address) == 1 and twilio.delivered_to(two_new.address) == 1
    assert twilio.delivered_to(once.address) == twilio.delivered_to(twice.address) == 0
    assert dispatcher.stats.deferred == 3 and dispatcher.stats.sent == 2
    assert aware(db.row_of(once, cap_one)["next_attempt_at"]) == NOW + dt.timedelta(days=4)
    assert aware(db.row_of(twice, cap_two)["next_attempt_at"]) == NOW + dt.timedelta(days=1)
    new_rows = [db.row_of(two_new, cap_one), db.row_of(two_new, also_one)]
    assert sorted(r["state"] for r in new_rows) == ["pending", "sent"]
    [waiting] = [r for r in new_rows if r["state"] == "pending"]
    assert aware(waiting["next_attempt_at"]) == NOW + dt.timedelta(days=7)
    assert waiting["error"] == "weekly_cap"

    clock.advance(days=4, minutes=1)
    await dispatch(db, twilio, telegram, clock=clock, until_done=False)
    assert twilio.delivered_to(once.address) == twilio.delivered_to(twice.address) == 1
    assert twilio.delivered_to(two_new.address) == 1  # its second still waits
    clock.advance(days=3)
    await dispatch(db, twilio, telegram, clock=clock, until_done=False)
    assert twilio.delivered_to(two_new.address) == 2 and db.states(cap_one) == {"sent": 3}


# -- retries -----------------------------------------------------------------------------------

def test_backoff_doubles_from_2_s_to_1_h_with_jitter_and_honours_retry_after():
    for attempts in range(1, 16):
        full = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1))
        assert backoff(attempts, None, rng=lambda: 0.0) == pytest.approx(full / 2)
        assert backoff(attempts, None, rng=lambda: 1.0) == pytest.approx(full)
    assert backoff(1, None, rng=lambda: 1.0) == 2.0 and backoff(12, None, rng=lambda: 1.0) == 3600.0
    assert 30.0 <= backoff(1, 30.0) <= 31.0
    # a Retry-After shorter than the grown wait does not cut it (a storm answering 429 with
    # retry_after 1 would otherwise spend the attempts in seconds)
    assert 4.0 <= backoff(3, 0.0) <= 8.0 and 4.0 <= backoff(3, 1.0) <= 8.0
    assert backoff(1, 7200.0, rng=lambda: 1.0) == 3601.0


async def test_429_waits_for_retry_after_then_sends_once(db, twilio, telegram):
    people = db.subscribe(3, "sms") + db.subscribe(3, "telegram")
    campaign = db.campaign("limited")
    db.queue(campaign, people)
    twilio.script_for[people[0].address] = [429]  # Retry-After: 1
    telegram.script_for[people[3].address] = [429]  # parameters.retry_after: 1
    dispatcher = await dispatch(db, twilio, telegram)
    assert db.states() == {"sent": 6} and dispatcher.stats.retried == 2
    sms = [r for r in twilio.received if r.form["To"] == people[0].address]
    chat = [c for c in telegram.calls if str(c.params["chat_id"]) == people[3].address]
    assert [r.answered for r in sms] == [429, 201] and [c.answered for c in chat] == [429, 200]
    for first, second in (sms, chat):
        assert second.at - first.at >= 1.0  # Retry-After honoured
    for fake, person in ((twilio, people[0]), (telegram, people[3])):
        assert fake.delivered_to(person.address) == 1
        row = db.row_of(person, campaign)
        assert row["attempts"] == 2 and row["error"] is None and row["provider_ref"]
    assert dispatcher.stats.errors["http_429"] == 2


async def test_5xx_and_timeouts_are_retried_with_backoff(db, twilio, telegram):
    people = db.subscribe(2, "sms") + db.subscribe(2, "telegram")
    campaign = db.campaign("flaky")
    db.queue(campaign, people)
    twilio.script_for[people[0].address] = [500, 503]
    telegram.script_for[people[2].address] = [502, "timeout"]
    telegram.slow_seconds = 3.0  # the sender gives up after 2 s
    dispatcher = await dispatch(db, twilio, telegram, base_delay=0.05)
    assert db.states() == {"sent": 4}
    assert db.row_of(people[0], campaign)["attempts"] == 3
    assert db.row_of(people[2], campaign)["attempts"] == 3
    assert twilio.delivered_to(people[0].address) == 1 and telegram.delivered_to(people[2].address) == 1
    assert dispatcher.stats.retried == 4
    assert dispatcher.stats.errors == {"http_500": 1, "http_503": 1, "http_502": 1, "timeout": 1}


async def test_the_last_attempt_fails_without_removing_the_subscriber(db, twilio, telegram):
    [person] = db.subscribe(1, "sms")
    campaign = db.campaign("down")
    db.queue(campaign, [person])
    twilio.script_for[person.address] = [500, 500, 500, 500]
    dispatcher = await dispatch(db, twilio, telegram, base_delay=0.05, max_attempts=3)
    row = db.row_of(person, campaign)
    assert (row["state"], row["attempts"], row["error"]) == ("failed", 3, "http_500")
    assert len(twilio.received) == 3 and twilio.delivered_to(person.address) == 0
    assert db.subscribers.get(person.conversation_id) is not None and dispatcher.stats.removed == 0


async def test_permanent_failures_fail_at_once_and_remove_the_subscriber(db, twilio, telegram):
    stopped, invalid, fine_sms = db.subscribe(3, "sms")
    blocked, missing, fine_chat = db.subscribe(3, "telegram")
    twilio.unsubscribed.add(stopped.address)  # the number sent STOP: 21610
    twilio.invalid.add(invalid.address)  # 21211
    telegram.blocked.add(blocked.address)  # 403
    telegram.missing_chats.add(missing.address)  # 400 chat not found
    campaign = db.campaign("permanent")
    db.queue(campaign, [stopped, invalid, fine_sms, blocked, missing, fine_chat])
    row_ids = {r["subscriber_id"]: r["id"] for r in db.rows()}  # removal empties subscriber_id
    dispatcher = await dispatch(db, twilio, telegram)
    rows = {r["id"]: r for r in db.rows()}
    errors = {p.address: rows[row_ids[p.id]]["error"] for p in (stopped, invalid, blocked, missing)}
    assert errors == {stopped.address: "twilio_21610", invalid.address: "twilio_21211",
                      blocked.address: "telegram_403", missing.address: "telegram_400_chat"}
    assert all(rows[row_ids[p.id]]["subscriber_id"] is None for p in (stopped, invalid, blocked, missing))
    assert db.states() == {"failed": 4, "sent": 2} and dispatcher.stats.removed == 4
    for gone in (stopped, invalid, blocked, missing):
        assert db.subscribers.get(gone.conversation_id) is None
    assert db.subscriber_ids() == {fine_sms.id, fine_chat.id}
    assert len(twilio.received) == 3 and len(telegram.calls) == 3  # never retried


async def test_a_message_the_provider_refuses_fails_but_keeps_the_subscriber(db, twilio, telegram):
    [person] = db.subscribe(1, "telegram")
    campaign = db.campaign("too-long", texts={"en": "x " * 2100})  # over Telegram's 4096
    db.queue(campaign, [person])
    await dispatch(db, twilio, telegram)
    row = db.row_of(person, campaign)
    assert (row["state"], row["error"]) == ("failed", "text_too_long")
    assert db.subscribers.get(person.conversation_id) is not None


async def test_a_subscriber_gone_before_sending_is_opted_out(db, twilio, telegram):
    leaving, staying = db.subscribe(2, "sms")
    campaign = db.campaign("leaving")
    db.queue(campaign, [leaving, staying])
    assert db.subscribers.remove(leaving.conversation_id)  # STOP after queueing
    dispatcher = await dispatch(db, twilio, telegram)
    states = {r["state"] for r in db.rows() if r["subscriber_id"] is None}
    assert states == {"opted_out"} and dispatcher.stats.opted_out == 1
    assert twilio.delivered_to(leaving.address) == 0 and twilio.delivered_to(staying.address) == 1


async def test_a_subscriber_whose_consent_expired_is_opted_out_and_deleted(any_db, twilio,
                                                                            telegram):
    cutoff = add_months(NOW, -12)  # the clock starts at NOW; 12 months without a deployment
    [lapsed_sms] = any_db.subscribe(1, "sms", consented_at=NOW - dt.timedelta(days=400))
    [lapsed_chat] = any_db.subscribe(1, "telegram", start=1,
                                     consented_at=cutoff - dt.timedelta(seconds=1))
    [valid_sms] = any_db.subscribe(1, "sms", start=2, consented_at=cutoff + dt.timedelta(hours=1))
    [valid_chat] = any_db.subscribe(1, "telegram", start=3)  # 30 days ago
    first, second = any_db.campaign("lapsed"), any_db.campaign("lapsed-again")
    any_db.queue(first, [lapsed_sms, lapsed_chat, valid_sms, valid_chat])
    any_db.queue(second, [lapsed_sms])  # two messages for one expired subscriber
    row_ids = {(r["campaign_id"], r["subscriber_id"]): r["id"] for r in any_db.rows()}
    dispatcher = await dispatch(any_db, twilio, telegram)
    rows = {r["id"]: r for r in any_db.rows()}
    for campaign, person in ((first, lapsed_sms), (first, lapsed_chat), (second, lapsed_sms)):
        row = rows[row_ids[campaign, person.id]]
        assert (row["state"], row["attempts"], row["subscriber_id"]) == ("opted_out", 0, None)
    assert any_db.states() == {"opted_out": 3, "sent": 2}
    assert any_db.subscriber_ids() == {valid_sms.id, valid_chat.id}  # rows and addresses gone
    for gone in (lapsed_sms, lapsed_chat):
        assert any_db.subscribers.get(gone.conversation_id) is None
    assert twilio.delivered_to(lapsed_sms.address) == 0 and len(twilio.received) == 1
    assert telegram.delivered_to(lapsed_chat.address) == 0 and len(telegram.calls) == 1
    assert twilio.delivered_to(valid_sms.address) == 1
    assert telegram.delivered_to(valid_chat.address) == 1
    stats = dispatcher.stats
    assert (stats.sent, stats.opted_out, stats.expired, stats.removed) == (2, 3, 2, 0)


async def test_the_consent_lasts_as_long_as_the_deployment_says(db, twilio, telegram):
    from dataclasses import replace

    from bot.deployment import load_deployment
    from tests.conftest import SAMPLE_DEPLOYMENT

    deployment = load_deployment(SAMPLE_DEPLOYMENT)
    deployment = replace(deployment, campaigns=replace(deployment.campaigns, consent_months=6))
    [seven_months] = db.subscribe(1, "sms", consented_at=add_months(NOW, -7))
    [five_months] = db.subscribe(1, "sms", start=1, consented_at=add_months(NOW, -5))
    campaign = db.campaign("six-months")
    db.queue(campaign, [seven_months, five_months])
    dispatcher = await dispatch(db, twilio, telegram, deployment=deployment)
    assert dispatcher.consent_months == 6
    assert db.states() == {"opted_out": 1, "sent": 1} and dispatcher.stats.expired == 1
    assert db.subscriber_ids() == {five_months.id}
    assert twilio.delivered_to(seven_months.address) == 0
    assert twilio.delivered_to(five_months.address) == 1


# -- leases and idempotency --------------------------------------------------------------------

async def test_expired_leases_are_taken_back_and_live_ones_left_alone(db, twilio, telegram):
    dead, alive, fresh = db.subscribe(3, "sms")
    campaign = db.campaign("leases")
    db.queue(campaign, [dead, alive, fresh])
    table = OutboxMessage.__table__
    with db.engine.begin() as connection:
        for person, lease in ((dead, NOW - dt.timedelta(minutes=1)),
                              (alive, NOW + dt.timedelta(minutes=10))):
            connection.execute(sa.update(table).where(table.c.subscriber_id == person.id)
                               .values(state="sending", lease_until=lease))
    dispatcher = await dispatch(db, twilio, telegram, clock=Clock(NOW, frozen=True),
                                until_done=False)
    assert dispatcher.stats.taken_back == 1
    assert db.row_of(dead, campaign)["state"] == db.row_of(fresh, campaign)["state"] == "sent"
    assert db.row_of(alive, campaign)["state"] == "sending"  # another dispatcher's
    assert twilio.delivered_to(alive.address) == 0


async def test_a_message_sent_but_not_recorded_goes_again_with_its_key(db, twilio, telegram):
    people = db.subscribe(2, "sms") + db.subscribe(2, "telegram")
    campaign = db.campaign("again")
    db.queue(campaign, people)
    await dispatch(db, twilio, telegram)
    table = OutboxMessage.__table__
    with db.engine.begin() as connection:  # as if the dispatcher died before writing "sent"
        connection.execute(sa.update(table).values(
            state="sending", lease_until=NOW - dt.timedelta(seconds=1), sent_at=None))
    dispatcher = await dispatch(db, twilio, telegram, clock=Clock(NOW, frozen=True))
    assert dispatcher.stats.taken_back == 4 and db.states() == {"sent": 4}
    assert twilio.repeats == 2 and telegram.repeats == 2  # the same key: the first answer
    assert all((twilio if p.channel == "sms" else telegram).delivered_to(p.address) == 1
               for p in people)


async def test_bad_credentials_stop_everything_and_remove_no_one(db, twilio, telegram):
    people = db.subscribe(30, "sms")
    campaign = db.campaign("wrong-token")
    db.queue(campaign, people)
    with pytest.raises(DispatchError, match="twilio_20003"):
        await dispatch(db, twilio, telegram, auth_token="not-the-token")
    assert db.states() == {"pending": 30}
    assert all(r["attempts"] == 0 and r["lease_until"] is None for r in db.rows())
    assert len(db.subscriber_ids()) == 30 and twilio.delivered() == []


# -- lease owners: a dispatcher frozen past its lease ------------------------------------------

FREEZE = 3.0  # seconds a frozen dispatcher stands still: three of its 1-s leases


class Recording:
    """A sender that notes the provider's message id of each idempotency key it sent;
    ``before`` runs before each request."""

    def __init__(self, sender, before=None) -> None:
        self.sender, self.provider, self.before = sender, sender.provider, before
        self.refs: dict[str, str] = {}

    async def send(self, address, text, key):
        if self.before is not None:
            self.before()
        outcome = await self.sender.send(address, text, key)
        if outcome.ref:
            self.refs[key] = outcome.ref
        return outcome

    async def close(self) -> None:
        await self.sender.close()


def recording(made: dict, before=None) -> dict:
    return {name: Recording(sender, before) for name, sender in made.items()}


def keys_sent(made: dict) -> dict[str, str]:
    return {key: ref for sender in made.values() for key, ref in sender.refs.items()}


def elsewhere(dispatcher: Dispatcher, made: dict, start: threading.Event) -> threading.Thread:
    """Runs ``dispatcher`` until done, once ``start`` is set, in a thread and event loop of its
    own: another process, which goes on while the test's loop stands still."""
    failures: list[BaseException] = []

    async def work() -> None:
        try:
            await dispatcher.run()
        finally:
            for sender in made.values():
                await sender.close()

    def main() -> None:
        start.wait(30)
        try:
            asyncio.run(work())
        except BaseException as exc:  # pragma: no cover - reported by the test
            failures.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.failures = failures
    thread.start()
    return thread


def outcome_of(dispatcher: Dispatcher, row_id: int, ref: str) -> dict:
    """A "sent" outcome as the dispatcher batches it for ``_db_write``."""
    return {"b_id": row_id, "b_state": "sent", "b_attempts": 1, "b_next": NOW, "b_sent_at": NOW,
            "b_ref": ref, "b_error": None, "b_owner": dispatcher.owner}


def test_only_the_owner_renews_writes_or_gives_back_a_row(any_db):
    campaign = any_db.campaign("owners")
    any_db.queue(campaign, any_db.subscribe(4, "sms"))
    other = CampaignDb(any_db.url, route_key=any_db.route_key, migrate=False)
    try:
        first, second = (Dispatcher(d.sessions, d.subscribers, {}, clock=Clock())
                         for d in (any_db, other))
        assert first.owner != second.owner and len(first.owner) == 32
        now = NOW + dt.timedelta(minutes=1)
        lease = now + dt.timedelta(seconds=30)
        claimed, _ = first._db_claim(("sms",), 4, now, lease)
        ids = sorted(row[0] for row in claimed)
        assert {(r["state"], r["lease_owner"]) for r in any_db.rows()} == {("sending", first.owner)}
        assert first._db_renew(ids, lease + dt.timedelta(seconds=5)) == set(ids)

        # the first stands still past its lease: the second takes the rows back, claims two
        later = lease + dt.timedelta(seconds=10)
        assert second._db_takeback(later) == 4
        assert {(r["state"], r["lease_owner"], r["lease_until"]) for r in any_db.rows()} == {
            ("pending", None, None)}
        taken, _ = second._db_claim(("sms",), 2, later, later + dt.timedelta(seconds=30))
        theirs = sorted(row[0] for row in taken)
        free = sorted(set(ids) - set(theirs))
        before = {r["id"]: (r["state"], r["lease_owner"], aware(r["lease_until"]))
                  for r in any_db.rows()}

        # the first wakes: it renews nothing, writes nothing and gives nothing back
        assert first._db_renew(ids, later + dt.timedelta(minutes=5)) == set()
        assert first._db_write([outcome_of(first, i, "first") for i in ids], []) == set(ids)
        assert first._db_write([], list(ids)) == set(ids)
        after = {r["id"]: (r["state"], r["lease_owner"], aware(r["lease_until"]))
                 for r in any_db.rows()}
        assert after == before
        assert {after[i][:2] for i in theirs} == {("sending", second.owner)}
        assert {after[i][:2] for i in free} == {("pending", None)}
        assert {r["provider_ref"] for r in any_db.rows()} == {None}

        # the second's renewal and outcomes go through; the first's never over them
        # the statements themselves are conditional too (PostgreSQL's bulk UPDATE .. FROM
        # (VALUES ..), SQLite's executemany), not only the read of the rows still held
        with any_db.sessions.begin() as session:
            lost = [outcome_of(first, i, "first") for i in ids]
            if not (first._psycopg2 and _write_from_values(session, lost)):
                session.execute(first._WRITE, lost)
        assert {r["id"]: (r["state"], r["lease_owner"], aware(r["lease_until"]))
                for r in any_db.rows()} == before
        assert second._db_renew(ids, later + dt.timedelta(minutes=1)) == set(theirs)
        assert second._db_write([outcome_of(second, i, "second") for i in theirs], []) == set()
        assert first._db_write([outcome_of(first, i, "first") for i in theirs], []) == set(theirs)
        # what the first holds again (claimed anew) it writes as ever
        again, _ = first._db_claim(("sms",), 4, later, later + dt.timedelta(seconds=30))
        assert sorted(row[0] for row in again) == free
        assert first._db_write([outcome_of(first, i, "first") for i in free], []) == set()
        rows = {r["id"]: r for r in any_db.rows()}
        assert {i: rows[i]["provider_ref"] for i in ids} == {
            **{i: "second" for i in theirs}, **{i: "first" for i in free}}
        assert {(r["state"], r["lease_owner"], r["lease_until"]) for r in rows.values()} == {
            ("sent", None, None)}
    finally:
        other.close()


async def test_a_dispatcher_frozen_past_its_lease_sends_and_writes_nothing_it_lost(
        any_db, twilio, telegram, caplog):
    caplog.set_level(logging.INFO, logger="bot.campaigns.dispatch")
    people = any_db.subscribe(12, "sms") + any_db.subscribe(12, "telegram", start=100)
    campaign = any_db.campaign("frozen")
    rows = any_db.queue(campaign, people)
    other = CampaignDb(any_db.url, route_key=any_db.route_key, migrate=False)
    clock = Clock()  # one time for both: two hosts whose clocks agree
    frozen = threading.Event()
    made_first = recording(senders(twilio, telegram))
    made_second = recording(senders(twilio, telegram))
    # the first claims 8 rows per provider and sends them at 4/s: most wait at the rate
    first = Dispatcher(any_db.sessions, any_db.subscribers, made_first, clock=clock,
                       lease_seconds=1.0, limits=Limits(sms_per_second=4, telegram_per_second=4),
                       default_timezone="UTC")
    second = Dispatcher(other.sessions, other.subscribers, made_second, clock=clock,
                        lease_seconds=1.0, limits=UNLIMITED, default_timezone="UTC")
    thread = elsewhere(second, made_second, frozen)
    held: dict[int, str] = {}

    async def freeze() -> None:
        # once some are sent and recorded, and no request is under way
        while not (first.stats.sent >= 2 and first.stats.in_flight == 0 and not first._writes):
            await asyncio.sleep(0.005)
        held.update((item.id, item.key) for lane in first.lanes.values()
                    for item in lane.outstanding.values())
        frozen.set()
        time.sleep(FREEZE)  # the whole process stands still: no send, no renewal, no write

    freezer = asyncio.ensure_future(freeze())
    try:
        await first.run()
        await freezer
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 60)
    finally:
        for sender in made_first.values():
            await sender.close()
        other.close()
    assert thread.failures == [] and not thread.is_alive()
    assert len(held) >= 6  # rows the first held, unsent, when it froze

    delivered = twilio.totals()[0] + telegram.totals()[0]
    requests = twilio.totals()[2] + telegram.totals()[2]
    assert delivered == requests == rows  # not even a repeat with the same key
    assert all((twilio if p.channel == "sms" else telegram).delivered_to(p.address) == 1
               for p in people)
    assert first.stats.lost == len(held) and second.stats.lost == 0
    assert second.stats.taken_back == len(held) and first.stats.taken_back == 0
    assert first.stats.sent + second.stats.sent == rows and first.stats.sent >= 2
    by_first, by_second = keys_sent(made_first), keys_sent(made_second)
    assert set(held.values()) <= set(by_second) and not set(by_first) & set(by_second)
    stored = {r["idempotency_key"]: r["provider_ref"] for r in any_db.rows()}
    assert stored == {**by_first, **by_second}  # each row has its sender's outcome
    assert any_db.states() == {"sent": rows}
    assert {(r["lease_owner"], r["lease_until"]) for r in any_db.rows()} == {(None, None)}
    warnings = [r.getMessage() for r in caplog.records if "no longer held" in r.getMessage()]
    assert warnings and sum(int(w.split()[1]) for w in warnings) == len(held)
    addresses = [p.address for p in people] + [p.address.lstrip("+") for p in people]
    assert not [a for a in addresses if any(a in w for w in warnings)]


async def test_the_outcome_of_a_request_under_way_when_frozen_is_not_written(any_db, twilio,
                                                                              telegram):
    twilio.delay_seconds = 0.3  # the fake takes the message at once and answers after this
    people = any_db.subscribe(3, "sms")
    campaign = any_db.campaign("under-way")
    rows = any_db.queue(campaign, people)
    other = CampaignDb(any_db.url, route_key=any_db.route_key, migrate=False)
    clock = Clock()
    frozen = threading.Event()
    woke: list[dt.datetime] = []

    def stand_still() -> None:
        frozen.set()
        time.sleep(FREEZE)  # while the requests are under way
        woke.append(clock())

    def freeze_soon() -> None:
        if not frozen.is_set() and not woke:
            asyncio.get_running_loop().call_later(0.1, stand_still)
            woke.append(None)  # scheduled once

    slow = {"twilio": SmsSender(TwilioConfig(twilio.account_sid, twilio.auth_token,
                                             "+9995550100", api_url=twilio.url,
                                             timeout_seconds=10.0))}  # no timeout meanwhile
    made_first = recording(slow, before=freeze_soon)
    made_second = recording(senders(twilio, telegram))
    first = Dispatcher(any_db.sessions, any_db.subscribers, made_first, clock=clock,
                       lease_seconds=1.0, limits=UNLIMITED, default_timezone="UTC")
    second = Dispatcher(other.sessions, other.subscribers, made_second, clock=clock,
                        lease_seconds=1.0, limits=UNLIMITED, default_timezone="UTC")
    thread = elsewhere(second, made_second, frozen)
    try:
        await first.run()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 60)
    finally:
        for sender in made_first.values():
            await sender.close()
        other.close()
    assert thread.failures == [] and not thread.is_alive()
    woken = woke[-1]
    for row in any_db.rows():  # the second's outcomes, not overwritten by the first's
        assert row["state"] == "sent" and row["attempts"] == 1 and row["lease_owner"] is None
        assert aware(row["sent_at"]) < woken
    # the first's requests reached the fake before the freeze; the second sent the rows again
    # with their keys (the limit that remains: a provider that ignores the key delivers twice)
    assert twilio.totals() == (rows, rows, 2 * rows)
    assert all(twilio.delivered_to(p.address) == 1 for p in people)
    assert first.stats.lost == rows and first.stats.sent == 0 and second.stats.sent == rows
    assert keys_sent(made_first) == keys_sent(made_second)  # the fake's first answers


async def test_a_row_whose_lease_ran_out_unrenewed_is_not_sent(any_db, twilio, telegram):
    people = any_db.subscribe(6, "sms")
    campaign = any_db.campaign("unrenewed")
    rows = any_db.queue(campaign, people)
    made = senders(twilio, telegram)
    # 6 rows claimed at once and sent at 4/s: the last ones' turn comes after the 1-s lease
    dispatcher = Dispatcher(any_db.sessions, any_db.subscribers, made, clock=Clock(),
                            lease_seconds=1.0, limits=Limits(sms_per_second=4),
                            default_timezone="UTC")

    async def blocked() -> None:  # the renewal never runs (the database thread is stuck)
        return None

    dispatcher._renew = blocked
    try:
        await dispatcher.run()
    finally:
        for sender in made.values():
            await sender.close()
    stats = dispatcher.stats
    assert stats.lost >= 1 and stats.taken_back >= stats.lost  # its own rows, claimed anew
    assert twilio.totals() == (rows, 0, rows)  # each sent once: none after its lease ran out
    assert all(twilio.delivered_to(p.address) == 1 for p in people)
    assert stats.sent == rows and any_db.states() == {"sent": rows}


# -- texts and the NGO's channel ---------------------------------------------------------------

async def test_each_person_gets_their_language_and_the_channel_gets_its_post(db, twilio, telegram):
    texts = dict(TEXTS, fr="L’emploi promis à l’étranger ? Vérifiez d’abord. STOP pour arrêter.")
    french = db.subscribe(1, "sms", language="fr")[0]
    arabic = db.subscribe(1, "telegram", language="ar")[0]
    campaign = db.campaign("texts", texts=texts,
                           telegram_channel={"chat": "@example_ngo_channel", "language": "es"})
    db.queue(campaign, [french, arabic], channel_post="es")
    await dispatch(db, twilio, telegram)
    stored = CampaignDefinition.from_json(definition("texts", texts=texts))
    [sms] = twilio.delivered()
    assert sms["Body"] == stored.sms_text("fr") and "’" not in sms["Body"]  # as SMS sends it
    assert sms["To"] == french.address and sms["From"] == "+9995550100"
    by_chat = {str(p["chat_id"]): p["text"] for p in telegram.sent()}
    assert by_chat == {arabic.address: TEXTS["ar"], "@example_ngo_channel": TEXTS["es"]}
    assert db.states() == {"sent": 3}


async def test_only_the_named_campaign_is_sent(db, twilio, telegram):
    people = db.subscribe(4, "sms")
    one, other = db.campaign("one"), db.campaign("other")
    db.queue(one, people[:2])
    db.queue(other, people[2:])
    await dispatch(db, twilio, telegram, campaign="one")
    assert db.states(one) == {"sent": 2} and db.states(other) == {"pending": 2}
    with pytest.raises(DispatchError, match="no campaign named 'nope'"):
        await dispatch(db, twilio, telegram, campaign="nope")


async def test_messages_without_a_sender_are_a_clear_error(db, twilio, telegram):
    campaign = db.campaign("nobody")
    db.queue(campaign, db.subscribe(1, "telegram"))
    only_sms = senders(twilio, telegram)["twilio"]
    dispatcher = Dispatcher(db.sessions, db.subscribers, {"twilio": only_sms})
    with pytest.raises(DispatchError, match=r"telegram \(1\)"):
        await dispatcher.run()
    await only_sms.close()


# -- logs --------------------------------------------------------------------------------------

async def test_the_logs_carry_no_address_text_or_token(db, twilio, telegram, caplog):
    caplog.set_level(logging.DEBUG)
    people = db.subscribe(4, "sms") + db.subscribe(4, "telegram")
    campaign = db.campaign("quiet")
    db.queue(campaign, people)
    twilio.script_for[people[0].address] = [429, 500]
    twilio.unsubscribed.add(people[1].address)
    telegram.script_for[people[4].address] = [503]
    telegram.blocked.add(people[5].address)
    db.subscribers.remove(people[6].conversation_id)
    await dispatch(db, twilio, telegram, base_delay=0.05)
    assert db.states() == {"sent": 5, "failed": 2, "opted_out": 1}
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                       if not r.name.startswith(("aiohttp.access", "aiohttp.server")))  # the fakes'
    assert "dispatch:" in logged
    secrets = [p.address for p in people] + [p.address.lstrip("+") for p in people]
    secrets += [p.conversation_id for p in people]
    secrets += [word for text in TEXTS.values() for word in text.split() if len(word) > 5]
    secrets += [twilio.auth_token, telegram.token, telegram.token.split(":")[1]]
    found = [s for s in secrets if s in logged]
    assert found == []


async def test_a_removed_subscriber_leaves_no_provider_message_id(any_db, twilio, telegram):
    """Issue 16 (do no harm): a Twilio MessageSid leads to the number in the provider's logs;
    once a subscriber is gone (STOP, erasure, consent expired, a permanent failure) their
    outbox rows keep the campaign's counts but not the provider's ids. Others' stay."""
    people = any_db.subscribe(4, "sms") + any_db.subscribe(1, "telegram")
    campaign = any_db.campaign("refs")
    any_db.queue(campaign, people)
    await dispatch(any_db, twilio, telegram)
    assert all(any_db.row_of(p, campaign)["provider_ref"] for p in people)
    subscribers = any_db.subscribers
    assert subscribers.remove(people[0].conversation_id)  # STOP or a quick exit
    assert subscribers.remove_id(people[4].id)  # a permanent failure
    assert subscribers.expire(1, ids=[people[1].id], now=NOW + dt.timedelta(days=800)) == 1
    rows = {r["id"]: r for r in any_db.rows(campaign)}
    kept = [r["provider_ref"] for r in rows.values() if r["subscriber_id"] is not None]
    gone = [r["provider_ref"] for r in rows.values() if r["subscriber_id"] is None]
    assert len(gone) == 3 and gone == [None, None, None]
    assert len(kept) == 2 and all(kept)
    assert subscribers.expire(1, now=NOW + dt.timedelta(days=800)) == 2  # all the others
    assert {r["provider_ref"] for r in any_db.rows(campaign)} == {None}
    assert any_db.states(campaign) == {"sent": 5}
