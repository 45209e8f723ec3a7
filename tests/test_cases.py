"""The hand-off's cases on SQLite and PostgreSQL: the queue's order, one winner among
simultaneous claims, permissions, the transcript unreadable once closed, the audit log, erasure
by quick exit, bad input."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.cases.models import Case, CaseKey, CaseMessage
from bot.cases.queue import AlreadyTaken, CaseError, Cases, NotAllowed, User
from bot.privacy import erasure
from bot.storage import make_engine, session_factory, upgrade

AMINA, BOB, SUPER = User("amina"), User("bob"), User("lead", supervisor=True)
ROUTE_KEY = Fernet.generate_key()


class Clock:
    """A clock the test moves: one minute per reading."""

    def __init__(self) -> None:
        self._minutes = itertools.count()

    def __call__(self) -> dt.datetime:
        return dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc) + dt.timedelta(
            minutes=next(self._minutes))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/cases.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def cases(database):
    return Cases(session_factory(database), MultiFernet([Fernet(ROUTE_KEY)]), clock=Clock())


def opened(cases, n: int, level: str = "medium", **extra):
    return cases.open(f"c{n:030d}", "sms", "fr", level, **extra)


def test_the_queue_is_most_urgent_first_then_longest_waiting(cases):
    low = opened(cases, 1, "low")
    none = opened(cases, 2, "none")
    high_early = opened(cases, 3, "high")
    emergency = opened(cases, 4, "emergency")
    high_late = opened(cases, 5, "high")
    assert [c.id for c in cases.queue()] == [emergency.id, high_early.id, high_late.id, low.id, none.id]
    cases.claim(emergency.id, AMINA)
    assert [c.id for c in cases.queue()] == [high_early.id, high_late.id, low.id, none.id]


def test_a_conversation_has_one_open_case_at_most(cases):
    first = opened(cases, 1, "high", needs=["shelter", "anti_trafficking"], area="NG-BO-MAI")
    again = opened(cases, 1, "low")
    assert again.id == first.id and again.triage_level == "high"
    assert first.needs == ("anti_trafficking", "shelter") and first.area == "NG-BO-MAI"
    assert cases.open_case_for(first.conversation_id).status == "waiting"


def test_the_row_holds_closed_sets_and_times_only(cases, database):
    case = opened(cases, 1, "high", needs=["legal_aid"], area="LY-TRI")
    cases.claim(case.id, AMINA)
    cases.record(case.id, "person", "My name is Temperance, my number is +999 555 0142")
    with database.connect() as connection:
        row = dict(connection.execute(sa.select(Case.__table__)).mappings().one())
        stored = b"".join(connection.execute(sa.select(CaseMessage.body)).scalars())
    assert set(row) == {"id", "conversation_id", "channel", "language", "triage_level", "urgency",
                        "needs", "area", "status", "caseworker", "outcome", "created_at",
                        "claimed_at", "closed_at", "replies_blocked", "held_until"}
    assert row["replies_blocked"] in (False, 0)  # a closed fact (Twilio 21610), set by block_replies
    assert b"Temperance" not in stored and b"0142" not in stored


def test_of_simultaneous_claims_exactly_one_wins(cases):
    case = opened(cases, 1, "emergency")
    workers = [User(f"worker{n}") for n in range(8)]
    barrier = threading.Barrier(len(workers))
    results: dict = {}

    def claim(user: User) -> None:
        barrier.wait()
        try:
            results[user.name] = cases.claim(case.id, user).caseworker
        except AlreadyTaken:
            results[user.name] = None

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [name for name, got in results.items() if got]
    assert len(results) == len(workers) and len(winners) == 1
    assert cases.case(case.id, User(winners[0])).caseworker == winners[0]
    assert [e.action for e in cases.audit(case.id)].count("claimed") == 1


def test_only_the_caseworker_or_a_supervisor_reads_a_case(cases):
    case = opened(cases, 1)
    cases.claim(case.id, AMINA)
    cases.record(case.id, "person", "hello?")
    cases.record(case.id, "caseworker", "Hello, I am here.", AMINA)
    with pytest.raises(NotAllowed):
        cases.transcript(case.id, BOB)
    with pytest.raises(NotAllowed):
        cases.record(case.id, "caseworker", "not mine", BOB)
    with pytest.raises(NotAllowed):
        cases.close(case.id, BOB, "referred")
    assert [(line.author, line.text) for line in cases.transcript(case.id, SUPER)] == [
        ("person", "hello?"), ("caseworker", "Hello, I am here.")]
    moved = cases.transfer(case.id, AMINA, "bob")
    assert moved.caseworker == "bob"
    assert [line.text for line in cases.transcript(case.id, BOB)][-1] == "Hello, I am here."
    with pytest.raises(NotAllowed):
        cases.transcript(case.id, AMINA)  # no longer hers
    assert [c.id for c in cases.mine(BOB)] == [case.id] and cases.mine(AMINA) == []
    assert [c.id for c in cases.mine(SUPER)] == [case.id]


def test_closing_destroys_the_key_and_the_transcript_is_noise(cases, database):
    case = opened(cases, 1, "high")
    cases.claim(case.id, AMINA)
    cases.record(case.id, "person", "they keep my passport")
    closed = cases.close(case.id, AMINA, "referred")
    assert (closed.status, closed.outcome) == ("closed", "referred") and closed.closed_at
    with pytest.raises(CaseError, match="destroyed"):
        cases.transcript(case.id, AMINA)
    with database.connect() as connection:
        bodies = connection.execute(sa.select(CaseMessage.body)).scalars().all()
        keys = connection.execute(sa.select(CaseKey.__table__)).all()
    assert len(bodies) == 1 and keys == []  # the text is still there, its key is not
    # No key this deployment holds opens it: not the route key, not a fresh one.
    for key in (ROUTE_KEY, Fernet.generate_key()):
        with pytest.raises(InvalidToken):
            Fernet(key).decrypt(bodies[0])
    with pytest.raises(CaseError, match="closed"):
        cases.record(case.id, "person", "are you there?")


def test_a_quick_exit_ends_the_case_and_destroys_its_texts(cases, database):
    case = opened(cases, 7)
    cases.claim(case.id, AMINA)
    cases.record(case.id, "person", "I need to go")
    name = "cases (test)"
    erasure.register(name, cases.erase)
    try:
        import asyncio

        asyncio.run(erasure.erase(case.conversation_id))
    finally:
        erasure.unregister(name)
    ended = cases.case(case.id, SUPER)
    assert (ended.status, ended.outcome) == ("closed", "no_contact")
    with database.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(CaseMessage)).scalar() == 0
    assert ("person", "closed", "ended_by_person") in [(e.actor, e.action, e.detail)
                                                       for e in cases.audit(case.id)]
    assert cases.end_by_person(case.conversation_id) is None  # nothing open any more


def test_the_audit_log_says_who_did_what_and_never_what_was_said(cases, database):
    case = opened(cases, 1)
    cases.claim(case.id, AMINA)
    cases.case(case.id, AMINA)
    cases.record(case.id, "caseworker", "a reply with a secret word: marigold", AMINA)
    cases.transfer(case.id, AMINA, "bob")
    cases.close(case.id, BOB, "information_given")
    assert [(e.actor, e.action, e.detail) for e in cases.audit(case.id)] == [
        ("amina", "claimed", None), ("amina", "opened", None), ("amina", "replied", None),
        ("amina", "transferred", "bob"), ("bob", "closed", "information_given")]
    with database.connect() as connection:
        log = " ".join(str(v) for row in connection.execute(sa.text("SELECT * FROM audit_log"))
                       for v in row)
    assert "marigold" not in log


def test_bad_input_is_refused_with_the_reason(cases):
    with pytest.raises(CaseError) as error:
        cases.open("c" + "0" * 30, "fax", "de", "urgent", needs=["money"], area="Maiduguri town!")
    message = str(error.value)
    for part in ("channel 'fax'", "language 'de'", "triage level 'urgent'", "need 'money'", "area"):
        assert part in message
    with pytest.raises(CaseError, match="pseudonym"):
        cases.open("+999 555 0142", "sms", "en", "low")
    case = opened(cases, 1)
    with pytest.raises(CaseError, match="no case"):
        cases.claim(999_999, AMINA)
    with pytest.raises(CaseError, match="user name"):
        cases.claim(case.id, User("Amina Smith"))
    cases.claim(case.id, AMINA)
    with pytest.raises(AlreadyTaken):
        cases.claim(case.id, BOB)
    with pytest.raises(CaseError, match="outcome"):
        cases.close(case.id, AMINA, "rescued")
    with pytest.raises(CaseError, match="1 to 2000"):
        cases.record(case.id, "person", "   ")
    with pytest.raises(CaseError, match="author"):
        cases.record(case.id, "stranger", "hi")
    with pytest.raises(CaseError, match="already with"):
        cases.transfer(case.id, AMINA, "amina")


def test_purge_deletes_cases_closed_long_enough_ago(cases):
    old, recent = opened(cases, 1), opened(cases, 2)
    for case in (old, recent):
        cases.claim(case.id, AMINA)
        cases.record(case.id, "person", "hello")
    cases.close(old.id, AMINA, "no_contact")
    assert cases.purge(closed_days=0) == 1  # the clock moved on since it closed
    assert cases.purge(closed_days=0) == 0
    with pytest.raises(CaseError, match="no case"):
        cases.case(old.id, SUPER)
    assert cases.case(recent.id, AMINA).status == "active"


class SetClock:
    """A clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


def test_cases_idle_as_long_as_a_conversation_close_as_expired(database):
    """A Redis tracker store expires idle conversations unseen: the cases idle as long are
    closed by the sweep (no contact, texts and key destroyed, the audit saying why); a case
    with a recent message either way stays."""
    clock = SetClock()
    cases = Cases(session_factory(database), MultiFernet([Fernet(ROUTE_KEY)]), clock=clock)
    waiting, silent, talking = opened(cases, 1), opened(cases, 2), opened(cases, 3)
    for case in (silent, talking):
        cases.claim(case.id, AMINA)
    cases.record(silent.id, "person", "hello")
    clock.now += dt.timedelta(hours=20)
    cases.record(talking.id, "caseworker", "Are you still there?", AMINA)
    clock.now += dt.timedelta(hours=5)  # 25 h after the first two, 5 h after the reply
    assert sorted(cases.expire_idle(24)) == sorted([waiting.id, silent.id])
    assert cases.expire_idle(24) == []
    for case in (waiting, silent):
        ended = cases.case(case.id, SUPER, audit=False)
        assert (ended.status, ended.outcome) == ("closed", "no_contact")
        assert ("assistant", "closed", "expired") in [
            (e.actor, e.action, e.detail) for e in cases.audit(case.id)]
    assert cases.case(talking.id, AMINA).status == "active"
    with database.connect() as connection:
        left = set(connection.execute(sa.select(CaseMessage.case_id)).scalars())
        keys = set(connection.execute(sa.select(CaseKey.case_id)).scalars())
    assert left == {talking.id} and keys == {talking.id}
    # one conversation's case, as the tracker store's purge closes it
    assert cases.expire(talking.conversation_id) == talking.id
    assert cases.expire(talking.conversation_id) is None
    assert ("assistant", "closed", "expired") in [
        (e.actor, e.action, e.detail) for e in cases.audit(talking.id)]


def test_a_channel_opens_at_most_its_cap_of_new_cases_an_hour(cases):
    """Issue 17 §2: a script cannot bury real cases under made-up ones. The clock moves one
    minute per reading; the cap counts cases created on the channel in the last hour."""
    from bot.cases.queue import CapReached

    for n in range(3):
        cases.open(f"c{n:030d}", "sms", "en", "high", cap=3)
    with pytest.raises(CapReached):
        cases.open(f"c{9:030d}", "sms", "en", "emergency", cap=3)
    assert cases.open(f"c{1:030d}", "sms", "en", "high", cap=3).status == "waiting"  # its own
    cases.open(f"c{20:030d}", "telegram", "en", "low", cap=3)  # another channel is not capped
    assert cases.at_cap(3) == {"sms": 3}
    assert cases.at_cap(4) == {}
    for _ in range(60):  # an hour later the first ones no longer count
        cases._clock()
    assert cases.open(f"c{30:030d}", "sms", "en", "medium", cap=3).status == "waiting"
