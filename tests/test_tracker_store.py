"""The private tracker store on every backend: redacted writes, erasure, expiry.

Runs against an SQLite file, PostgreSQL and Redis on this machine, and memory.
"""

from __future__ import annotations

import json
import stat
import time

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.privacy.routes import MemoryRouteCache, Route
from bot.settings import PROJECT_ROOT, Settings, SettingsError
from bot.tracker_store import PrivateTrackerStore, erase_point

DOMAIN = Domain.load(str(PROJECT_ROOT / "bot" / "domain"))
PHONE = "+999 555 0177"
NAME = "Adaeze Nwosu"


def conversation(reset_by: str) -> list:
    return [
        ActionExecuted("action_session_start"), SessionStarted(metadata={"From": PHONE}),
        SlotSet("session_started_metadata", {"From": PHONE}), ActionExecuted("action_listen"),
        UserUttered(f"I am {NAME}, my boss took my passport", {"name": "report_situation"},
                    metadata={"From": PHONE}),
        ActionExecuted("utter_screening_consent"),
        BotUttered(f"I can ask, {NAME}...", metadata={"utter_action": "utter_screening_consent"}),
        ActionExecuted("action_listen"),
        UserUttered("exit", {"name": "quick_exit"}),
        ActionExecuted(reset_by), BotUttered("Ok."), Restarted(),
        ActionExecuted("action_session_start"), SessionStarted(), SlotSet("language", "en"),
        ActionExecuted("action_listen"),
    ]


def chat_so_far() -> list:
    return conversation("action_restart")[:8]


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def store(request, tmp_path):
    env = {"HELPLINE_SECRETS_FILE": str(tmp_path / "secrets.json")}
    backend = request.param
    if backend == "sqlite":
        env.update(HELPLINE_TRACKER_STORE="sql", HELPLINE_DATABASE_URL=f"sqlite:///{tmp_path}/db/t.db")
    elif backend == "postgresql":
        env.update(HELPLINE_TRACKER_STORE="sql",
                   HELPLINE_DATABASE_URL=request.getfixturevalue("postgres_url"))
    elif backend == "redis":
        env.update(HELPLINE_TRACKER_STORE="redis", HELPLINE_REDIS_URL=request.getfixturevalue("redis_url"))
    else:
        env.update(HELPLINE_TRACKER_STORE="memory")
    store = PrivateTrackerStore(DOMAIN, settings=Settings.from_env(env))
    store.kind = backend
    yield store


def raw_contents(store: PrivateTrackerStore) -> str:
    """Everything the backend holds, as text."""
    inner = store.inner
    if store.backend == "memory":
        return json.dumps(inner.store)
    if store.backend == "redis":
        return json.dumps({k: inner.red.get(k) for k in inner.red.keys("*")})
    with inner.engine.connect() as connection:
        return json.dumps([list(map(str, row)) for row in connection.execute(sa.text("SELECT * FROM events"))])


async def test_what_is_written_has_no_text_metadata_or_free_values(store):
    tracker = DialogueStateTracker.from_events("c1", chat_so_far() + [SlotSet("area", "14 Elm Road")],
                                               slots=DOMAIN.slots)
    await store.save(tracker)
    raw = raw_contents(store)
    assert "report_situation" in raw and "utter_screening_consent" in raw
    for canary in (NAME, "passport", "5550177", "555 0177", "Elm Road"):
        assert canary not in raw, f"{canary} written to {store.kind}"
    stored = await store.retrieve("c1")
    assert stored.get_slot("area") == "[redacted]"
    assert stored.latest_message.intent_name == "report_situation"


async def test_turn_by_turn_saves_keep_every_event_once(store):
    events = chat_so_far()
    await store.save(DialogueStateTracker.from_events("c2", events[:4], slots=DOMAIN.slots))
    retrieved = await store.retrieve("c2")
    for event in events[4:]:
        retrieved.update(event)
    await store.save(retrieved)
    again = await store.retrieve_full_tracker("c2")
    assert [e.as_dict()["event"] for e in again.events] == [e.as_dict()["event"] for e in events]
    assert list(await store.keys()) == ["c2"]


@pytest.mark.parametrize("reset_by", ["action_quick_exit", "action_forget_me"])
async def test_quick_exit_and_forget_me_erase_the_conversation_and_its_route(store, reset_by):
    routes = MemoryRouteCache(MultiFernet([Fernet(Fernet.generate_key())]), idle_seconds=60)
    try:
        await store.save(DialogueStateTracker.from_events("c3", chat_so_far(), slots=DOMAIN.slots))
        await store.save(DialogueStateTracker.from_events("other", chat_so_far(), slots=DOMAIN.slots))
        await routes.put("c3", Route("sms", PHONE))
        await store.save(DialogueStateTracker.from_events("c3", conversation(reset_by), slots=DOMAIN.slots))
        assert await store.retrieve_full_tracker("c3") is None
        assert await routes.get("c3") is None
        assert list(await store.keys()) == ["other"]  # others are untouched
        # The next message starts a fresh conversation under the same id.
        fresh = await store.get_or_create_tracker("c3")
        assert [e.as_dict()["event"] for e in fresh.events] == ["action"]
    finally:
        routes.close()


async def test_an_ordinary_restart_keeps_the_history(store):
    await store.save(DialogueStateTracker.from_events("c4", conversation("action_restart"), slots=DOMAIN.slots))
    assert await store.retrieve_full_tracker("c4") is not None


async def test_idle_conversations_are_purged_with_their_routes(store):
    routes = MemoryRouteCache(MultiFernet([Fernet(Fernet.generate_key())]), idle_seconds=60)
    try:
        await store.save(DialogueStateTracker.from_events("old", chat_so_far(), slots=DOMAIN.slots))
        await routes.put("old", Route("sms", PHONE))
        later = time.time() + store.idle_seconds + 60
        if store.backend == "redis":
            ttl = store.inner.red.ttl(store.inner.key_prefix + "old")
            assert store.idle_seconds - 5 <= ttl <= store.idle_seconds  # Redis expires it itself
            assert await store.purge(now=later) == 0
            return
        assert store.idle_conversations(now=time.time()) == []
        assert await store.purge(now=later) == 1
        assert await store.retrieve_full_tracker("old") is None
        assert await routes.get("old") is None
    finally:
        routes.close()


def test_the_sqlite_file_is_private(tmp_path):
    settings = Settings.from_env({"HELPLINE_DATABASE_URL": f"sqlite:///{tmp_path}/var/h.db"})
    PrivateTrackerStore(DOMAIN, settings=settings)
    assert stat.S_IMODE((tmp_path / "var" / "h.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700


def test_the_erase_point_is_the_reset_after_an_erasing_action():
    events = conversation("action_quick_exit")
    assert erase_point(events) == 11
    assert erase_point(conversation("action_forget_me")) == 11
    assert erase_point(conversation("action_restart")) is None
    assert erase_point(events[11:]) is None
    assert erase_point(events[:5]) is None


def test_rasa_builds_it_from_the_endpoints_file(tmp_path, monkeypatch):
    from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
    from rasa.utils.endpoints import read_endpoint_config

    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/h.db")
    config = read_endpoint_config(str(PROJECT_ROOT / "endpoints.yml"), "tracker_store")
    store = TrackerStore.create(config, DOMAIN)
    assert isinstance(store, PrivateTrackerStore)  # not Rasa's silent in-memory fall-back
    assert isinstance(store.inner, SQLTrackerStore)


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"HELPLINE_TRACKER_STORE": "mongo"}, "expected one of sql, redis, memory"),
        ({"HELPLINE_TRACKER_STORE": "redis"}, "HELPLINE_REDIS_URL is not set"),
        ({"HELPLINE_REDIS_URL": "localhost:6379"}, "expected redis://"),
        ({"HELPLINE_DATABASE_URL": "helpline.db"}, "expected an SQLAlchemy URL"),
        ({"HELPLINE_PURGE_MINUTES": "0"}, "must be at least 1"),
    ],
)
def test_bad_storage_settings_are_named(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_the_database_url_is_not_shown_by_repr():
    settings = Settings.from_env({"HELPLINE_DATABASE_URL": "postgresql://u:s3cret@db/h"})
    assert "s3cret" not in repr(settings)


async def test_only_coarse_places_and_known_needs_of_a_search_are_written(tmp_path):
    from tests.utils.directory import sample_database

    url = sample_database(tmp_path, places=True)
    env = {"HELPLINE_SECRETS_FILE": str(tmp_path / "secrets.json"),
           "HELPLINE_TRACKER_STORE": "memory", "HELPLINE_DATABASE_URL": url}
    store = PrivateTrackerStore(DOMAIN, settings=Settings.from_env(env))
    shared = UserUttered('/inform_location{"latitude":11.817512,"longitude":13.169034}',
                         {"name": "inform_location"},
                         entities=[{"entity": "latitude", "value": 11.817512},
                                   {"entity": "longitude", "value": 13.169034}])
    events = chat_so_far() + [
        shared, SlotSet("service_need", "shelter"), SlotSet("service_place", "ng-maiduguri"),
        SlotSet("services_page", "1"), SlotSet("service_place", "ng-camp-bakassi"),
        SlotSet("service_need", "a flat near the market"),
    ]
    await store.save(DialogueStateTracker.from_events("c9", events, slots=DOMAIN.slots))
    raw = raw_contents(store)
    assert "ng-maiduguri" in raw and "shelter" in raw and "inform_location" in raw
    for canary in ("ng-camp-bakassi", "11.8175", "13.169", "flat near the market"):
        assert canary not in raw, canary


def test_the_kept_places_follow_the_directory(tmp_path, monkeypatch):
    import bot.tracker_store as tracker_store

    env = {"HELPLINE_SECRETS_FILE": str(tmp_path / "secrets.json"), "HELPLINE_TRACKER_STORE": "memory"}
    store = PrivateTrackerStore(DOMAIN, settings=Settings.from_env(env))
    monkeypatch.setattr(tracker_store, "services_place_codes", lambda url: (1, frozenset({"ng-a"})))
    assert store.rules.value("service_place", "ng-a") == "ng-a"
    monkeypatch.setattr(tracker_store, "services_place_codes", lambda url: (2, frozenset({"ng-b"})))
    assert store.rules.value("service_place", "ng-a") == "[redacted]"
    assert store.rules.value("service_place", "ng-b") == "ng-b"


async def test_a_purged_conversations_open_case_closes_as_expired(tmp_path):
    """The idle purge closes the conversation's hand-off case (nobody could answer it any
    more) with the audit saying it expired, not that the person left."""
    from bot.cases.service import cases_for
    from tests.test_handoff import migrated

    url = migrated(tmp_path)
    settings = Settings.from_env({"HELPLINE_SECRETS_FILE": str(tmp_path / "secrets.json"),
                                  "HELPLINE_TRACKER_STORE": "sql", "HELPLINE_DATABASE_URL": url})
    store = PrivateTrackerStore(DOMAIN, settings=settings)
    sender = "c" + "5" * 31
    await store.save(DialogueStateTracker.from_events(sender, chat_so_far(), slots=DOMAIN.slots))
    cases = cases_for(url, settings)
    case = cases.open(sender, "sms", "en", "high")
    assert await store.purge(now=time.time() + store.idle_seconds + 60) == 1
    assert cases.open_case_for(sender) is None
    assert [(e.actor, e.detail) for e in cases.audit(case.id) if e.action == "closed"] == [
        ("assistant", "expired")]
