"""The privacy commands: secrets init / rotate / retire, purge, and the check of secrets."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import cli
from bot.privacy.keys import load_secrets
from bot.privacy.routes import RedisRouteCache, Route
from bot.settings import PROJECT_ROOT, Settings
from bot.tracker_store import PrivateTrackerStore

DOMAIN = Domain.load(str(PROJECT_ROOT / "bot" / "domain"))


@pytest.fixture
def env(tmp_path, monkeypatch):
    values = {"HELPLINE_SECRETS_FILE": str(tmp_path / "var" / "secrets.json"),
              "HELPLINE_DATABASE_URL": f"sqlite:///{tmp_path}/var/h.db",
              "HELPLINE_REDIS_URL": ""}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HELPLINE_ROUTE_KEYS", raising=False)
    monkeypatch.delenv("HELPLINE_PSEUDONYM_KEY", raising=False)
    yield values
    from channels.gateway import shared_routes, shared_secrets

    if shared_routes.cache_info().currsize:
        shared_routes().close()
    shared_routes.cache_clear()
    shared_secrets.cache_clear()


def test_secrets_init_creates_a_private_file_once(env, capsys):
    assert cli.main(["secrets", "init"]) == 0
    path = env["HELPLINE_SECRETS_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = open(path).read()
    assert cli.main(["secrets", "init"]) == 0
    assert open(path).read() == first
    out = capsys.readouterr().out
    assert "created (mode 600)" in out and "exists, left as it is" in out
    assert json.loads(first)["route_keys"][0] not in out  # keys are never printed


def test_init_makes_no_file_when_the_environment_holds_the_keys(env, monkeypatch, capsys):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("HELPLINE_PSEUDONYM_KEY", "p" * 40)
    monkeypatch.setenv("HELPLINE_ROUTE_KEYS", Fernet.generate_key().decode())
    assert cli.main(["secrets", "init"]) == 0
    assert "no secrets file needed" in capsys.readouterr().out
    assert not os.path.exists(env["HELPLINE_SECRETS_FILE"])


def test_rotate_and_retire_reencrypt_routes_in_redis(env, redis_url, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_REDIS_URL", redis_url)
    path = env["HELPLINE_SECRETS_FILE"]
    cli.main(["secrets", "init"])
    old = load_secrets(Settings.from_env().secrets_file, environ={})

    async def put_old() -> None:
        cache = RedisRouteCache(old.fernet(), 600, redis_url)
        await cache.put("c1", Route("sms", "+999 555 0100"))
        await cache.aclose()

    asyncio.run(put_old())
    assert cli.main(["secrets", "rotate"]) == 0
    assert len(json.load(open(path))["route_keys"]) == 2
    assert cli.main(["secrets", "retire"]) == 0
    assert ("1 stored route(s) re-encrypted, 0 open case key(s) re-wrapped, 0 subscriber "
            "address(es) re-encrypted, 1 old key(s) dropped") in capsys.readouterr().out
    new = load_secrets(Settings.from_env().secrets_file, environ={})
    assert new.route_keys != old.route_keys and len(new.route_keys) == 1

    async def read(secrets) -> object:
        cache = RedisRouteCache(secrets.fernet(), 600, redis_url)
        try:
            return await cache.get("c1")
        finally:
            await cache.aclose()

    assert asyncio.run(read(new)) == Route("sms", "+999 555 0100")
    assert asyncio.run(read(old)) is None


def test_rotation_is_refused_when_keys_come_from_the_environment(env, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_ROUTE_KEYS", "anything")
    assert cli.main(["secrets", "rotate"]) == 2
    assert "rotate them there" in capsys.readouterr().err


def test_retire_without_a_secrets_file_says_what_to_do(env, capsys):
    assert cli.main(["secrets", "retire"]) == 2
    assert "helpline secrets init" in capsys.readouterr().err


def test_check_reports_an_open_secrets_file(env):
    cli.main(["secrets", "init"])
    os.chmod(env["HELPLINE_SECRETS_FILE"], 0o644)
    problems = cli.check(Settings.from_env())
    assert problems and "can be read by other users" in problems[0]


def test_purge_deletes_idle_conversations_only(env, capsys):
    settings = Settings.from_env()
    store = PrivateTrackerStore(DOMAIN, settings=settings)
    long_ago = time.time() - store.idle_seconds - 3600
    old = [ActionExecuted("action_session_start", timestamp=long_ago),
           SessionStarted(timestamp=long_ago + 1),
           UserUttered("hi", {"name": "greet"}, timestamp=long_ago + 2)]
    recent = [ActionExecuted("action_session_start"), SessionStarted(), UserUttered("hi", {"name": "greet"})]

    async def fill() -> None:
        await store.inner.save(DialogueStateTracker.from_events("old", old, slots=DOMAIN.slots))
        await store.inner.save(DialogueStateTracker.from_events("new", recent, slots=DOMAIN.slots))

    asyncio.run(fill())
    assert cli.main(["purge"]) == 0
    assert "deleted 1 idle conversation(s)" in capsys.readouterr().out
    assert sorted(asyncio.run(store.keys())) == ["new"]


async def test_the_server_purges_on_its_own_while_saving(env):
    settings = Settings.from_env()
    store = PrivateTrackerStore(DOMAIN, settings=settings)
    long_ago = time.time() - store.idle_seconds - 3600
    await store.inner.save(DialogueStateTracker.from_events(
        "old", [ActionExecuted("action_listen", timestamp=long_ago)], slots=DOMAIN.slots))
    await store.save(DialogueStateTracker.from_events(
        "new", [ActionExecuted("action_listen")], slots=DOMAIN.slots))
    await store._purging  # the job the save started
    assert sorted(await store.keys()) == ["new"]
    store._last_purge = time.monotonic()
    await store.inner.save(DialogueStateTracker.from_events(
        "old2", [ActionExecuted("action_listen", timestamp=long_ago)], slots=DOMAIN.slots))
    await store.save(DialogueStateTracker.from_events("new", [ActionExecuted("action_listen")],
                                                      slots=DOMAIN.slots))
    assert "old2" in await store.keys()  # not again before HELPLINE_PURGE_MINUTES have passed


def test_retiring_route_keys_keeps_open_cases_and_subscribers_readable(env, capsys):
    """A case's transcript key and a subscriber's address are encrypted with the route key:
    retiring the old key re-encrypts them first, so a caseworker still reads the transcript
    and the dispatcher still reaches the subscriber afterwards."""
    from bot.campaigns.subscribers import Subscribers
    from bot.cases.queue import Cases, User
    from bot.storage import make_engine, session_factory, upgrade

    cli.main(["secrets", "init"])
    engine = make_engine(env["HELPLINE_DATABASE_URL"])
    upgrade(engine)
    sessions = session_factory(engine)
    old = load_secrets(Settings.from_env().secrets_file, environ={})
    case = Cases(sessions, old.fernet()).open("c" + "7" * 31, "sms", "en", "high")
    Cases(sessions, old.fernet()).claim(case.id, User("amina"))
    Cases(sessions, old.fernet()).record(case.id, "person", "still here")
    subscriber = Subscribers(sessions, old.fernet()).consent("c" + "8" * 31, "sms", "fr")
    Subscribers(sessions, old.fernet()).attach("c" + "8" * 31, "+999 555 0143")
    assert cli.main(["secrets", "rotate"]) == 0
    assert cli.main(["secrets", "retire"]) == 0
    out = capsys.readouterr().out
    assert "1 open case key(s) re-wrapped, 1 subscriber address(es) re-encrypted" in out
    new = load_secrets(Settings.from_env().secrets_file, environ={})
    assert len(new.route_keys) == 1 and new.route_keys[0] not in old.route_keys
    lines = Cases(sessions, new.fernet()).transcript(case.id, User("amina"))
    assert [line.text for line in lines] == ["still here"]
    assert Subscribers(sessions, new.fernet()).address(subscriber.id) == "+999 555 0143"
    assert Subscribers(sessions, old.fernet()).address(subscriber.id) is None
    engine.dispose()
