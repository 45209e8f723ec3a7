"""Every promise can be kept (issue 16 §2): "a caseworker will write to you from <when>" is true.

The sample deployment has no cover from Saturday 13:00 to Monday 08:00 (43 hours) while its
conversations and reply routes expire after 24 idle hours. A case waiting for a caseworker
therefore holds what the reply needs (the case row and the reply route, not the conversation's
events) until the end of the next shift of cover, plus ``HOLD_MARGIN``; then the ordinary idle
rules apply. The walk below makes a request at every hour of the sample's week, moves the
clock to the next opening (and to the end of that shift), runs every expiry there is, and the
caseworker's reply still reaches the person. GPC guide, 004 line 1116: "DO NOT ... make false
promises".
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import redis
from cryptography.fernet import Fernet, MultiFernet
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.cases.queue import CaseError, Cases, User
from bot.cases.service import HOLD_MARGIN, HandOff, hold_for, route_hold, route_hold_of
from bot.deployment import HumanCover, load_deployment, parse_deployment
from bot.privacy.keys import load_secrets
from bot.privacy.routes import REDIS_PREFIX, MemoryRouteCache, RedisRouteCache, Route
from bot.settings import PROJECT_ROOT, Settings
from bot.storage import make_engine, session_factory, upgrade
from bot.tracker_store import PrivateTrackerStore
from tests.conftest import SAMPLE_DEPLOYMENT
from tests.test_handoff import helpline, migrated  # noqa: F401  (a fixture)

SAMPLE = load_deployment(SAMPLE_DEPLOYMENT)
COVER = SAMPLE.human_cover  # Mon-Fri 08:00-20:00, Sat 09:00-13:00, Africa/Lagos
LAGOS = ZoneInfo(COVER.timezone)
UTC = dt.timezone.utc
IDLE = dt.timedelta(hours=SAMPLE.retention.conversation_idle_hours)
ROUTE_IDLE = SAMPLE.retention.reply_route_idle_hours * 3600
MONDAY = dt.datetime(2026, 11, 30, tzinfo=LAGOS)
DOMAIN = Domain.load(str(PROJECT_ROOT / "bot" / "domain"))
AMINA = User("amina")
REPLY = "I am Amina, a caseworker. I am here now. Are you safe to write?"


def lagos(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A time in the week of Monday 30 November 2026 (day 0), Lagos."""
    return MONDAY + dt.timedelta(days=day, hours=hour, minutes=minute)


# -- the hours of cover -------------------------------------------------------------------------


@pytest.mark.parametrize("asked,kept", [
    (lagos(5, 14), lagos(7, 20)),       # Saturday after the shift -> Monday's shift ends
    (lagos(6, 10), lagos(7, 20)),       # Sunday
    (lagos(5, 10), lagos(7, 20)),       # within Saturday's shift: the rest of it, and Monday's
    (lagos(4, 21), lagos(5, 13)),       # Friday night -> Saturday 09:00-13:00
    (lagos(0, 7), lagos(0, 20)),        # Monday before the shift -> Monday's
    (lagos(0, 8), lagos(1, 20)),        # at 08:00 "the next opening" is Tuesday's
    (lagos(0, 10), lagos(1, 20)),       # within Monday's shift: the rest of it, and Tuesday's
    (lagos(0, 20), lagos(1, 20)),       # the moment a shift ends
])
def test_the_hold_lasts_until_the_end_of_the_next_shift(asked, kept):
    assert COVER.keep_until(asked) == kept
    assert hold_for(SAMPLE, asked) == kept + HOLD_MARGIN


def test_the_longest_hold_of_the_sample_week_covers_its_longest_gap():
    holds = [COVER.keep_until(lagos(0, h)) - lagos(0, h) for h in range(168)]
    # asked on Saturday at 09:00, as the shift starts: until Monday 20:00
    assert max(holds) == dt.timedelta(hours=59) == holds[5 * 24 + 9]
    assert min(holds) > dt.timedelta(0)


def cover(hours: dict, timezone: str = "Africa/Lagos") -> HumanCover:
    data = yaml_sample()
    data["human_cover"] = {"timezone": timezone, "hours": hours}
    return parse_deployment(data).human_cover


def yaml_sample() -> dict:
    import yaml

    return yaml.safe_load(SAMPLE_DEPLOYMENT.read_text(encoding="utf-8"))


def test_ranges_that_meet_at_midnight_are_one_shift():
    night = cover({"monday": ["08:00-20:00", "20:00-24:00"], "tuesday": "00:00-06:00"})
    assert night.keep_until(lagos(0, 7)) == lagos(1, 6)
    assert night.keep_until(lagos(0, 21)) == lagos(8, 6)  # within it: next week's


def test_without_cover_or_without_a_break_the_ordinary_idle_times_apply():
    assert cover({}).keep_until(lagos(2, 3)) == lagos(2, 3)
    always = cover({day: "00:00-24:00" for day in
                    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")})
    assert always.keep_until(lagos(2, 3)) == lagos(2, 3) and always.longest_gap(MONDAY) is None
    one_day = cover({"wednesday": "00:00-24:00"})
    assert one_day.keep_until(lagos(2, 3)) == lagos(10, 0)  # within Wednesday: next week's


def test_helpline_check_names_the_longest_gap_and_the_hold_it_implies():
    from bot.cli import cover_note

    assert COVER.longest_gap(lagos(2, 12)) == (lagos(5, 13), lagos(7, 8))
    note = cover_note(Settings.from_env())
    assert "the longest gap is 43 h (Sat 13:00 to Mon 08:00, Africa/Lagos)" in note
    assert "keeps its row and reply route up to 60 h (the end of the next shift + 1 h)" in note
    assert cover({}).longest_gap(lagos(0, 0)) is None


@pytest.mark.parametrize("asked,kept_utc", [
    # Paris goes to summer time on Sunday 28 March 2027: Monday 20:00 is 18:00 UTC, not 19:00
    (dt.datetime(2027, 3, 27, 14, tzinfo=ZoneInfo("Europe/Paris")),
     dt.datetime(2027, 3, 29, 18, tzinfo=UTC)),
    # and back on Sunday 31 October 2027: Monday 20:00 is 19:00 UTC again
    (dt.datetime(2027, 10, 30, 14, tzinfo=ZoneInfo("Europe/Paris")),
     dt.datetime(2027, 11, 1, 19, tzinfo=UTC)),
])
def test_the_hold_follows_the_clocks_on_the_wall_across_daylight_saving(asked, kept_utc):
    paris = cover({"monday": "08:00-20:00", "saturday": "09:00-13:00"}, "Europe/Paris")
    assert paris.keep_until(asked) == kept_utc
    night = cover({"saturday": "20:00-24:00", "sunday": "00:00-04:00"}, "Europe/Paris")
    # the night of the change is an hour shorter in March: 19:00 CET to 04:00 CEST is 8 hours
    asked = dt.datetime(2027, 3, 27, 19, tzinfo=ZoneInfo("Europe/Paris"))
    assert night.keep_until(asked) - asked == dt.timedelta(hours=8)


# -- the reply-route caches ----------------------------------------------------------------------


def fernet() -> MultiFernet:
    return MultiFernet([Fernet(Fernet.generate_key())])


class Clock:
    """One clock for everything: Unix seconds the test sets."""

    def __init__(self, moment: dt.datetime = MONDAY) -> None:
        self.unix = moment.timestamp()

    def __call__(self) -> float:
        return self.unix

    def utc(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.unix, UTC)

    def set(self, moment: dt.datetime) -> None:
        self.unix = moment.timestamp()


async def test_a_held_memory_route_outlives_its_idle_time_and_use_never_shortens_it():
    clock = Clock()
    cache = MemoryRouteCache(fernet(), ROUTE_IDLE, clock=clock, wall_clock=clock)
    try:
        route = Route("sms", "+999 555 0101")
        await cache.put("c1", route)
        assert await cache.hold("c1", lagos(2, 21))
        clock.set(lagos(1, 12))
        assert await cache.get("c1") == route  # read: idle until Wednesday 12:00, held longer
        await cache.put("c1", route.with_menu(("/affirm",)))
        clock.set(lagos(2, 20, 59))
        assert (await cache.get("c1")).menu == ("/affirm",)
        clock.set(lagos(3, 20, 58))
        assert await cache.get("c1") is not None  # read at 20:59 on Wednesday: 24 h more
        clock.set(lagos(4, 21))
        assert await cache.get("c1") is None
        assert not await cache.hold("c1", lagos(6, 0))  # nothing left to hold
    finally:
        cache.close()


async def test_an_ordinary_route_still_expires_after_its_idle_time():
    clock = Clock()
    cache = MemoryRouteCache(fernet(), ROUTE_IDLE, clock=clock, wall_clock=clock)
    try:
        await cache.put("c1", Route("sms", "+999 555 0102"))
        assert await cache.hold("c1", lagos(0, 1))  # a hold shorter than the idle time: no change
        clock.unix += ROUTE_IDLE - 60
        assert await cache.get("c1") is not None
        clock.unix += ROUTE_IDLE + 1
        assert await cache.get("c1") is None
    finally:
        cache.close()


async def test_a_held_redis_route_keeps_its_longer_ttl(redis_url):
    cache = RedisRouteCache(fernet(), ROUTE_IDLE, redis_url)
    client = redis.Redis.from_url(redis_url)
    key = REDIS_PREFIX + "c1"
    try:
        route = Route("sms", "+999 555 0103")
        await cache.put("c1", route)
        assert ROUTE_IDLE - 5 <= client.ttl(key) <= ROUTE_IDLE
        until = dt.datetime.now(UTC) + dt.timedelta(hours=55)
        assert await cache.hold("c1", until)
        held = client.ttl(key)
        assert 55 * 3600 - 5 <= held <= 55 * 3600
        await cache.put("c1", route.with_menu(("/deny",)))  # use never shortens it
        assert await cache.get("c1") == route.with_menu(("/deny",))
        assert client.ttl(key) >= held - 5
        assert await cache.hold("c1", dt.datetime.now(UTC) + dt.timedelta(hours=1))
        assert client.ttl(key) >= held - 5  # nor a shorter hold
        await cache.forget("c1")
        assert client.exists(key) == 0 and not await cache.hold("c1", until)
        await cache.put("c2", route)  # a route without a hold: the idle time, as before
        assert ROUTE_IDLE - 5 <= client.ttl(REDIS_PREFIX + "c2") <= ROUTE_IDLE
    finally:
        client.close()
        await cache.aclose()


def test_the_hold_travels_to_the_channel_in_the_messages_metadata():
    until = lagos(7, 21).astimezone(UTC)
    messages = [{"text": "a", "metadata": {"language": "en"}},
                {"text": "b", "metadata": {"language": "en", **route_hold(until)}}]
    assert route_hold_of(messages) == until
    assert route_hold_of([{"metadata": {"hold_route_until": "not a time"}}]) is None
    assert route_hold_of([{"metadata": {"hold_route_until": "2026-12-01T10:00:00"}}]) is None
    assert route_hold_of([{"text": "no metadata"}]) is None and route_hold(None) == {}


# -- the cases ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/cases.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_held_case_is_not_expired_before_its_hold_ends(engine):
    clock = Clock(lagos(5, 14))  # Saturday, after the shift
    cases = Cases(session_factory(engine), fernet(), clock=clock.utc)
    held = cases.open("c" + "1" * 31, "sms", "en", "high", held_until=hold_for(SAMPLE, clock.utc()))
    plain = cases.open("c" + "2" * 31, "sms", "en", "high")
    assert held.held_until == lagos(7, 21) and plain.held_until is None
    clock.set(lagos(6, 14, 1))  # 24 h idle
    assert cases.expire_idle(24) == [plain.id]
    assert cases.held(held.conversation_id, clock.utc())
    clock.set(lagos(7, 20, 59))
    assert cases.expire_idle(24) == [] and cases.open_case_for(held.conversation_id)
    clock.set(lagos(7, 21, 1))  # the hold is over, idle for two days: the ordinary rule
    assert not cases.held(held.conversation_id, clock.utc())
    assert cases.expire_idle(24) == [held.id]


def test_asking_again_keeps_the_later_hold_and_a_time_without_zone_is_refused(engine):
    cases = Cases(session_factory(engine), fernet(), clock=Clock(lagos(5, 14)).utc)
    sender = "c" + "3" * 31
    first = cases.open(sender, "telegram", "fr", "none", held_until=lagos(7, 21))
    assert cases.open(sender, "telegram", "fr", "none", held_until=lagos(6, 0)).held_until == first.held_until
    assert cases.open(sender, "telegram", "fr", "none", held_until=lagos(8, 21)).held_until == lagos(8, 21)
    with pytest.raises(CaseError, match="held_until must be a time with its time zone"):
        cases.open("c" + "4" * 31, "sms", "en", "low", held_until=dt.datetime(2026, 12, 1))


# -- the whole way: request, the gap, expiry, the caseworker's reply ------------------------------


class Helpline:
    """The parts a request for a person and the caseworker's reply pass through, on one
    migrated database and one clock: the SMS channel's gateway with an in-memory route cache,
    the private tracker store (SQL), the cases as ``connect`` opens them."""

    def __init__(self, tmp_path, monkeypatch) -> None:
        import actions.handoff
        from channels.gateway import Gateway

        self.url = migrated(tmp_path)
        monkeypatch.setenv("HELPLINE_DATABASE_URL", self.url)
        settings = Settings.from_env({"HELPLINE_TRACKER_STORE": "sql",
                                      "HELPLINE_DATABASE_URL": self.url,
                                      "HELPLINE_PURGE_MINUTES": "100000"})
        secrets = load_secrets(settings.secrets_file)
        self.clock = Clock()
        self.cases = Cases(session_factory(make_engine(self.url)), secrets.fernet(),
                           clock=self.clock.utc)
        monkeypatch.setattr(actions.handoff, "hand_off", lambda: HandOff(self.cases, self.url))
        self.routes = MemoryRouteCache(secrets.fernet(), ROUTE_IDLE, clock=self.clock,
                                       wall_clock=self.clock)
        self.gateway = Gateway("sms", secrets, self.routes)
        self.store = PrivateTrackerStore(DOMAIN, settings=settings)
        self.store._last_purge = time.monotonic()  # no purge but the test's, by its clock

    async def request(self, address: str) -> str:
        """The person answers yes to the consent question now: the SMS channel admits the
        message, Rasa stores the turn, ``connect`` opens the case, the channel keeps the turn."""
        from actions.handoff import connect

        admitted = await self.gateway.admit(address, "yes")
        sender = admitted.conversation_id
        at = self.clock.unix
        await self.store.save(DialogueStateTracker.from_events(sender, [
            ActionExecuted("action_listen", timestamp=at),
            UserUttered("yes", {"name": "affirm"}, input_channel="sms", timestamp=at),
        ], slots=DOMAIN.slots))
        dispatcher = CollectingDispatcher()
        events = connect(dispatcher, sdk_tracker(sender, "affirm", {"offer": "handoff"}))
        assert SlotSet("handoff", "open") in events
        await self.gateway.remember_turn(admitted, dispatcher.messages)
        return sender

    async def expire(self) -> None:
        """Every expiry there is, at the clock's time: the tracker store's purge (the Rasa
        server's job, ``line purge``) and the cases' idle rule (the console's hourly
        housekeeping); the route cache expires by the same clock."""
        await self.store.purge(now=self.clock.unix)
        self.cases.expire_idle(SAMPLE.retention.conversation_idle_hours)

    async def caseworker_replies(self, sender: str) -> tuple[str, list[str], Route]:
        """A caseworker claims the case and writes; Rasa (``RasaRelay``: output channel the
        case's) runs a session start if the conversation has no events left, then the relay
        action, whose messages go out by the conversation's reply route."""
        from actions.handoff import ActionRelayCaseworker
        from actions.session import ActionSessionStart
        from console.relay import RasaRelay

        case = self.cases.open_case_for(sender)
        assert case is not None, "the case was closed before a caseworker could answer"
        self.cases.claim(case.id, AMINA)
        self.cases.record(case.id, "caseworker", REPLY, AMINA)
        assert "output_channel=sms" in RasaRelay("http://rasa").url_for(sender, "execute",
                                                                        case.channel)
        slots = {}
        if await self.store.retrieve_full_tracker(sender) is None:
            started = await ActionSessionStart().run(CollectingDispatcher(),
                                                     sdk_tracker(sender, None, {}), {})
            slots = {e["name"]: e["value"] for e in started if e["event"] == "slot"}
            assert slots["handoff"] == "open" and slots["language"] == case.language
        dispatcher = CollectingDispatcher()
        await ActionRelayCaseworker().run(dispatcher, sdk_tracker(sender, None, slots), {})
        route = await self.gateway.reply_route(sender)
        return case.channel, [m["text"] for m in dispatcher.messages], route

    async def forget(self, sender: str) -> None:
        await self.store.erase(sender)  # what a quick exit does


def sdk_tracker(sender: str, intent, slots: dict) -> Tracker:
    events = ([{"event": "user", "text": "yes", "parse_data": {"intent": {"name": intent}},
                "input_channel": "sms"}] if intent else [])
    return Tracker(sender, {"language": "en", **slots},
                   {"intent": {"name": intent}, "text": "yes", "entities": []} if intent else {},
                   events, False, None, {}, "action_listen")


@pytest.fixture
def line(tmp_path, monkeypatch):
    # hundreds of commits: on a memory-backed file system where there is one (no disk syncs)
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    line = Helpline(folder, monkeypatch)
    yield line
    line.routes.close()
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def shift_end(opening: dt.datetime) -> dt.datetime:
    """The end of the sample's shift that starts at ``opening``, read from the file."""
    day = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday")[opening.weekday()]
    hours = yaml_sample()["human_cover"]["hours"][day]
    for text in hours if isinstance(hours, list) else [hours]:
        start, end = text.split("-")
        if start == f"{opening:%H:%M}":
            return opening.replace(hour=int(end[:2]), minute=int(end[3:]))
    raise AssertionError(f"no shift starts at {opening}")


def every_hour_of_the_week():
    return [MONDAY + dt.timedelta(hours=h) for h in range(168)]


@pytest.mark.parametrize("when", ["at the next opening", "at the end of that shift"])
async def test_a_request_at_any_hour_of_the_week_gets_the_caseworkers_reply(line, when):
    for n, asked in enumerate(every_hour_of_the_week()):
        line.clock.set(asked)
        address = f"+999 555 {n:04d}"
        sender = await line.request(address)
        opening = COVER.next_opening(asked)  # "a caseworker will write to you from <opening>"
        line.clock.set(opening + dt.timedelta(minutes=5) if when == "at the next opening"
                      else shift_end(opening) - dt.timedelta(minutes=5))
        await line.expire()
        gone = await line.store.retrieve_full_tracker(sender) is None
        assert gone == (line.clock.utc() - asked > IDLE), asked  # the events went as ever
        channel, said, route = await line.caseworker_replies(sender)
        assert said == [REPLY], asked
        assert route is not None and (route.channel, route.address) == (channel, address), asked
        await line.forget(sender)
        assert await line.gateway.reply_route(sender) is None  # a quick exit, at once


async def test_when_nobody_answers_the_ordinary_idle_rules_take_over_after_the_hold(line):
    for n, asked in enumerate(every_hour_of_the_week()):
        line.clock.set(asked)
        sender = await line.request(f"+999 555 {n:04d}")
        ends = max(hold_for(SAMPLE, asked), asked + IDLE)
        line.clock.set(ends - dt.timedelta(minutes=1))
        await line.expire()
        assert line.cases.open_case_for(sender) is not None, asked
        line.clock.set(ends + dt.timedelta(minutes=1))  # (reading the route would renew it)
        await line.expire()
        assert line.cases.open_case_for(sender) is None, asked
        assert await line.gateway.reply_route(sender) is None, asked


async def test_an_ordinary_conversation_still_loses_its_route_after_the_idle_time(line):
    line.clock.set(lagos(5, 14))
    admitted = await line.gateway.admit("+999 555 0900", "hello")
    await line.gateway.remember_turn(admitted, [{"text": "Hello", "metadata": {}}])
    line.clock.unix += ROUTE_IDLE + 1
    assert await line.gateway.reply_route(admitted.conversation_id) is None


async def test_a_quick_exit_erases_a_held_route_and_case_at_once(line):
    line.clock.set(lagos(5, 14))
    sender = await line.request("+999 555 0901")
    assert line.cases.held(sender, line.clock.utc())
    line.clock.set(lagos(6, 16))  # Sunday: the conversation's events are gone
    await line.expire()
    assert await line.store.retrieve_full_tracker(sender) is None
    assert await line.gateway.reply_route(sender) is not None
    await line.forget(sender)
    assert await line.gateway.reply_route(sender) is None
    assert line.cases.open_case_for(sender) is None


async def test_the_persons_next_message_after_the_gap_goes_to_the_open_case(line):
    """The tracker was deleted while the case waited: the new session reopens the hand-off, so
    the message goes to the caseworker instead of a greeting as to a stranger."""
    from actions.session import ActionSessionStart

    line.clock.set(lagos(5, 14))
    sender = await line.request("+999 555 0902")
    line.clock.set(lagos(6, 18))
    await line.expire()
    events = await ActionSessionStart().run(CollectingDispatcher(),
                                            sdk_tracker(sender, "greet", {"language": None}), {})
    assert SlotSet("handoff", "open") in events and SlotSet("language", "en") in events
    others = await ActionSessionStart().run(CollectingDispatcher(),
                                            sdk_tracker("c" + "9" * 31, "greet", {}), {})
    assert not any(e.get("name") == "handoff" for e in others)


def test_rasa_sends_to_latest_nowhere_when_the_conversation_has_no_events():
    """Why the relay names the case's channel: Rasa 3.6 finds "latest" in the tracker's last
    user message; without one it only collects the reply into its HTTP answer."""
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.server import _get_output_channel

    from channels.sms import SmsInput

    sms = SmsInput.__new__(SmsInput)
    sms.get_output_channel = lambda: "the sms output"
    app = SimpleNamespace(ctx=SimpleNamespace(input_channels=[sms]))
    empty = DialogueStateTracker("c" + "7" * 31, [])
    latest = SimpleNamespace(args={"output_channel": "latest"}, app=app)
    named = SimpleNamespace(args={"output_channel": "sms"}, app=app)
    assert isinstance(_get_output_channel(latest, empty), CollectingOutputChannel)
    assert _get_output_channel(named, empty) == "the sms output"


# -- with the trained assistant ------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_after_the_conversation_expired_the_reply_and_the_next_message_find_the_case(
        helpline):
    """The trained assistant: the conversation's events are deleted while its case waits (the
    idle purge of a held case); the caseworker's reply still goes out (Rasa starts a new
    session, which reopens the hand-off) and the person's next message goes to the case."""
    from bot.cases.service import cases_for
    from rasa.core.channels.channel import CollectingOutputChannel

    bot = helpline
    sender = "c" + "e" * 31
    bot.say(sender, "/change_language" + '{"language": "es"}')
    assert bot.say(sender, "quiero hablar con una persona").responses == ["utter_handoff_consent"]
    assert bot.say(sender, "/affirm").slots["handoff"] == "open"
    cases = cases_for(bot.url)
    case = cases.open_case_for(sender)
    assert case.held_until is not None and case.language == "es"
    bot.loop.run_until_complete(bot.store.delete(sender))  # what the purge does to a held case
    assert bot.stored_events(sender) == []

    cases.claim(case.id, AMINA)
    cases.record(case.id, "caseworker", "Hola, soy Amina.", AMINA)
    output = CollectingOutputChannel()
    bot.loop.run_until_complete(bot.agent.execute_action(
        sender, "action_relay_caseworker", output, None, None))
    assert [m.get("text") for m in output.messages] == ["Hola, soy Amina."]
    turn = bot.say(sender, "gracias, estoy en un restaurante")
    assert turn.responses == [] and turn.slots["handoff"] == "open"  # the assistant is quiet
    assert cases.transcript(case.id, AMINA)[-1].text == "gracias, estoy en un restaurante"
    assert bot.say(sender, "salir").responses == ["utter_quick_exit"]
    assert cases.open_case_for(sender) is None
