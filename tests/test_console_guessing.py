"""The console resists guessing (issue 17 §4), on the real app over HTTP (aiohttp's test
server) and on SQLite and PostgreSQL: attempts counted atomically before the hash, lock-outs
that grow, hashes bounded to the cores, growing waits per client address, a supervisor's
unlock, HSTS."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bot import cli
from bot.cases.queue import Cases
from bot.storage import make_engine, session_factory, upgrade
from console.app import HSTS, USERS, Config, create_app
from console.models import Caseworker, SignInEvent
from console.throttle import (
    CLIENT_FIRST_MINUTES, CLIENT_MAX_FAILURES, CLIENT_MAX_MINUTES, ClientThrottle,
    client_address,
)
from console.users import LOCK_FIRST_MINUTES, MAX_FAILURES, SignInRefused, Users, lock_minutes
from tests.test_console import CSRF_FIELD, CSRF_META, FERNET, PASSWORD, Clock, FakeRelay

WRONG = "not the password, a guess"


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/console.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    clock = Clock()
    users = Users(sessions, clock=clock)
    users.add("amina", PASSWORD)
    users.add("bob", PASSWORD)
    users.add("lead", PASSWORD, supervisor=True)
    yield SimpleNamespace(sessions=sessions, clock=clock, users=users,
                          cases=Cases(sessions, FERNET, clock=clock), relay=FakeRelay())
    engine.dispose()


@pytest.fixture
def sqlite_world(tmp_path):
    """The same on SQLite only, for what does not depend on the database."""
    engine = make_engine(f"sqlite:///{tmp_path}/console.db")
    upgrade(engine)
    sessions = session_factory(engine)
    clock = Clock()
    users = Users(sessions, clock=clock)
    for name in ("amina", "bob"):
        users.add(name, PASSWORD)
    users.add("lead", PASSWORD, supervisor=True)
    yield SimpleNamespace(sessions=sessions, clock=clock, users=users, relay=FakeRelay())
    engine.dispose()


class Console:
    """The real console app on a test server; browsers that come from a given address (the
    proxy's X-Real-IP, believed from the loopback peer the test server sees)."""

    def __init__(self, world, **config) -> None:
        self.app = create_app(world.sessions, FERNET, world.relay,
                              Config(clock=world.clock, poll_seconds=0.05, **config))
        self.server = TestServer(self.app, host="127.0.0.1")
        self.clients: list[TestClient] = []

    async def __aenter__(self) -> "Console":
        await self.server.start_server()
        return self

    async def __aexit__(self, *_exc) -> None:
        for client in self.clients:
            await client.session.close()
        await self.server.close()

    @property
    def users(self) -> Users:
        return self.app[USERS]

    async def browser(self, address: str = "198.51.100.1") -> TestClient:
        jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(self.server.make_url("/"))])
        client = TestClient(self.server, cookie_jar=jar, headers={"X-Real-IP": address})
        await client.start_server()
        self.clients.append(client)
        return client

    async def sign_in(self, name: str, password: str, address: str = "198.51.100.1",
                      client: TestClient | None = None):
        """A fresh browser's sign-in (its own form token); the response, not followed."""
        client = client or await self.browser(address)
        page = await client.get("/sign-in")
        token = CSRF_FIELD.search(await page.text()).group(1)
        return await client.post("/sign-in", allow_redirects=False,
                                 data={"name": name, "password": password, "csrf": token})


def account(world, name: str) -> Caseworker:
    with world.sessions() as session:
        return session.get(Caseworker, name)


def events(world, name: str = "amina") -> list[str]:
    """The user's sign-in events but "created"."""
    with world.sessions() as session:
        return list(session.execute(
            sa.select(SignInEvent.event)
            .where(SignInEvent.user_name == name, SignInEvent.event != "created")
            .order_by(SignInEvent.id)).scalars())


# -- counted atomically, before the hash -------------------------------------------------

async def test_twenty_parallel_wrong_passwords_lock_the_account_after_exactly_five(world):
    """Each guess from its own address (the worst case: no per-client wait helps). The count
    goes up by a compare-and-set before the hash, so the 20 cannot all read "no failures
    yet": exactly five are checked, and the rest are refused as locked."""
    async with Console(world) as console:
        browsers = [await console.browser(f"203.0.113.{n}") for n in range(20)]
        tokens = [CSRF_FIELD.search(await (await b.get("/sign-in")).text()).group(1)
                  for b in browsers]
        answers = await asyncio.gather(*(
            b.post("/sign-in", allow_redirects=False,
                   data={"name": "amina", "password": WRONG, "csrf": token})
            for b, token in zip(browsers, tokens)))
        assert [a.status for a in answers] == [401] * 20
        row = account(world, "amina")
        assert row.failed_attempts == MAX_FAILURES
        until = row.locked_until.replace(tzinfo=dt.timezone.utc)
        assert until == world.clock.now + dt.timedelta(minutes=LOCK_FIRST_MINUTES)
        assert sorted(events(world)) == ["locked_out"] + ["refused"] * 19
        # The right password is refused while the lock lasts, from anywhere.
        assert (await console.sign_in("amina", PASSWORD, "192.0.2.1")).status == 401
        assert account(world, "amina").failed_attempts == MAX_FAILURES  # not counted
        world.clock.advance(minutes=LOCK_FIRST_MINUTES, seconds=1)
        assert (await console.sign_in("amina", PASSWORD, "192.0.2.1")).status == 303
        assert account(world, "amina").failed_attempts == 0


def test_the_count_is_taken_before_the_hash_and_given_back_on_success(sqlite_world):
    users = sqlite_world.users
    attempt = users.begin_sign_in("amina")  # no password yet: counted already
    assert attempt.counted and account(sqlite_world, "amina").failed_attempts == 1
    token, signed = users.finish_sign_in(attempt, users.check(attempt, PASSWORD))
    assert signed.user.name == "amina" and account(sqlite_world, "amina").failed_attempts == 0
    # A crash between the count and the hash leaves a failure, never a free guess.
    users.begin_sign_in("amina")
    assert account(sqlite_world, "amina").failed_attempts == 1
    # Unknown names and bad input cost a hash and count nothing anywhere.
    for name in ("nobody", "Not A Name", "x" * 500, None):
        attempt = users.begin_sign_in(name)
        assert not attempt.counted and attempt.name is None
        with pytest.raises(SignInRefused):
            users.finish_sign_in(attempt, users.check(attempt, PASSWORD))


# -- lock-outs that grow -----------------------------------------------------------------

def test_each_further_five_failures_lock_twice_as_long_up_to_fifteen_minutes(world):
    assert [lock_minutes(n) for n in range(1, 41)] == (
        [0, 0, 0, 0, 1] + [0, 0, 0, 0, 2] + [0, 0, 0, 0, 4] + [0, 0, 0, 0, 8]
        + [0, 0, 0, 0, 15] * 4)
    users = world.users
    for expected in (1, 2, 4, 8, 15, 15):
        for _ in range(MAX_FAILURES):
            with pytest.raises(SignInRefused):
                users.sign_in("amina", WRONG)
        until = users.account("amina").locked_until
        assert until == world.clock.now + dt.timedelta(minutes=expected)
        world.clock.advance(minutes=expected, seconds=-1)
        with pytest.raises(SignInRefused):
            users.sign_in("amina", PASSWORD)  # still locked
        world.clock.advance(seconds=2)
    # A success forgets the failures: the next lock-out is the first one again.
    assert users.sign_in("amina", PASSWORD)[1].user.name == "amina"
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            users.sign_in("amina", WRONG)
    assert users.account("amina").locked_until == world.clock.now + dt.timedelta(minutes=1)


# -- hashes bounded to the cores ----------------------------------------------------------

async def test_at_most_the_cores_hash_at_once_during_a_sign_in_flood(sqlite_world):
    cores = os.cpu_count()
    async with Console(sqlite_world) as console:
        gate = console.users.hashing
        assert gate.slots == cores  # the default: one hash per core
        names = ["amina", "bob", "lead", "nobody", "x"] * (cores + 1)
        answers = await asyncio.gather(*(
            console.sign_in(name, WRONG, f"203.0.113.{n}") for n, name in enumerate(names)))
        assert {a.status for a in answers} == {401}
        assert 1 <= gate.peak <= cores, gate.peak  # measured inside the real hash
        assert gate.running == 0


async def test_the_case_pages_answer_while_sign_ins_wait_for_a_hash(sqlite_world):
    """One hash slot, sixteen sign-ins in flight: the queue page does not wait for them (they
    wait for the slot on the event loop, not in the threads every page's database work
    needs), so at most a hash or two end while it is served."""
    async with Console(sqlite_world, hash_slots=1) as console:
        gate = console.users.hashing
        caseworker = await console.browser("192.0.2.9")
        assert (await console.sign_in("bob", PASSWORD, client=caseworker)).status == 303
        flood = [asyncio.ensure_future(console.sign_in("amina", WRONG, f"203.0.113.{n}"))
                 for n in range(16)]
        while gate.running == 0 or gate.done < 2:
            await asyncio.sleep(0.01)
        hashed = gate.done
        page = await caseworker.get("/")
        assert page.status == 200 and "Signed in as <strong>bob</strong>" in await page.text()
        assert gate.done - hashed <= 2, gate.done - hashed
        answers = await asyncio.gather(*flood)
        assert gate.peak == 1 and {a.status for a in answers} == {401}


# -- growing waits per client address ----------------------------------------------------

async def test_a_client_that_keeps_failing_waits_longer_each_time(sqlite_world):
    world = sqlite_world
    async with Console(world) as console:
        gate = console.users.hashing
        for n in range(CLIENT_MAX_FAILURES):  # any names: guessing names is guessing too
            assert (await console.sign_in(f"guess{n}", WRONG, "203.0.113.7")).status == 401
        hashes = gate.peak, gate.running
        waiting = await console.sign_in("amina", PASSWORD, "203.0.113.7")
        assert waiting.status == 429 and waiting.headers["Retry-After"] == "60"
        assert "Too many failed sign-ins from this device. Wait a minute" in await waiting.text()
        assert account(world, "amina").failed_attempts == 0  # not even counted for the name
        # Another address is not held up.
        assert (await console.sign_in("amina", PASSWORD, "198.51.100.20")).status == 303
        world.clock.advance(seconds=61)
        assert (await console.sign_in("bob", PASSWORD, "203.0.113.7")).status == 303
        for n in range(CLIENT_MAX_FAILURES):
            await console.sign_in(f"guess{n}", WRONG, "203.0.113.7")
        waiting = await console.sign_in("bob", PASSWORD, "203.0.113.7")
        assert waiting.status == 429 and waiting.headers["Retry-After"] == "120"
        assert gate.running == 0 and hashes[0] >= 1


async def test_the_client_table_keeps_no_address_and_forgets(sqlite_world):
    clock = sqlite_world.clock
    throttle = ClientThrottle(clock=clock, max_clients=3)
    for _ in range(CLIENT_MAX_FAILURES * 20):
        await throttle.failed("203.0.113.7")
    assert await throttle.wait_seconds("203.0.113.7") == CLIENT_MAX_MINUTES * 60  # the cap
    assert await throttle.wait_seconds("203.0.113.8") == 0
    assert "203.0.113.7" not in repr(throttle._clients) and all(
        isinstance(key, bytes) and len(key) == 32 for key in throttle._clients)
    for n in range(5):
        await throttle.failed(f"192.0.2.{n}")
    assert len(throttle) == 3 and await throttle.wait_seconds("203.0.113.7") == 0  # oldest went
    await throttle.failed("198.51.100.1")
    clock.advance(hours=24, seconds=1)
    assert await throttle.wait_seconds("198.51.100.1") == 0 and len(throttle) == 2  # forgotten
    await throttle.failed("198.51.100.1")  # a day later: counted afresh
    assert len(throttle) == 3


def test_the_proxys_address_header_is_believed_only_from_loopback():
    header = {"X-Real-IP": "203.0.113.5"}
    assert client_address("127.0.0.1", header) == "203.0.113.5"
    assert client_address("::1", header) == "203.0.113.5"
    assert client_address("198.51.100.1", header) == "198.51.100.1"  # a spoofed header
    assert client_address("127.0.0.1", {}) == "127.0.0.1"
    assert client_address(None, header) == ""
    assert client_address("127.0.0.1", {"X-Real-IP": "9" * 500}) == "9" * 64


async def test_a_stranger_cannot_keep_a_known_name_locked(sqlite_world):
    """A stranger guesses amina's password once a minute for four hours, from one address;
    amina tries every ten minutes from hers. With the account's lock-out alone the name would
    be locked three quarters of the time (15 minutes locked for every 5 guesses); the
    stranger's own waits outgrow the name's lock-outs, so after the first two hours the name
    is locked less than a tenth of the time and amina gets in."""
    world = sqlite_world
    async with Console(world) as console:
        stranger = await console.browser("203.0.113.66")
        locked_minutes, signed_in_at = 0, []
        for minute in range(4 * 60):
            await console.sign_in("amina", WRONG, client=stranger)
            until = account(world, "amina").locked_until
            locked = until is not None and until.replace(tzinfo=dt.timezone.utc) > world.clock.now
            locked_minutes += locked if minute >= 120 else 0
            if minute % 10 == 5:
                answer = await console.sign_in("amina", PASSWORD, "198.51.100.5")
                if answer.status == 303:
                    signed_in_at.append(minute)
            world.clock.advance(minutes=1)
        assert locked_minutes < 12, locked_minutes  # of the last 120
        assert len([m for m in signed_in_at if m >= 120]) >= 10, signed_in_at


# -- a supervisor unlocks ----------------------------------------------------------------

async def test_a_supervisor_unlocks_an_account_from_the_audit_page(world):
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            world.users.sign_in("amina", WRONG)
    async with Console(world) as console:
        lead = await console.browser("192.0.2.10")
        assert (await console.sign_in("lead", PASSWORD, client=lead)).status == 303
        audit = await (await lead.get("/audit")).text()
        assert "Locked accounts" in audit and "Unlock amina" in audit
        csrf = CSRF_META.search(audit).group(1)

        bob = await console.browser("192.0.2.11")
        assert (await console.sign_in("bob", PASSWORD, client=bob)).status == 303
        bob_csrf = CSRF_META.search(await (await bob.get("/")).text()).group(1)
        refused = await bob.post("/users/amina/unlock", data={"csrf": bob_csrf},
                                 allow_redirects=False)
        assert refused.status == 403 and "Only a supervisor" in await refused.text()
        assert (await lead.post("/users/amina/unlock", data={},
                                allow_redirects=False)).status == 403  # no CSRF token
        assert (await lead.post("/users/nobody/unlock", data={"csrf": csrf},
                                allow_redirects=False)).status == 404
        assert (await console.sign_in("amina", PASSWORD, "192.0.2.12")).status == 401  # locked

        done = await lead.post("/users/amina/unlock", data={"csrf": csrf}, allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == "/audit?unlocked=amina"
        page = await (await lead.get(done.headers["Location"])).text()
        assert "amina: the lock-out is over." in page and "Unlock amina" not in page
        assert "lock-out ended by a supervisor" in page
        assert (await console.sign_in("amina", PASSWORD, "192.0.2.12")).status == 303
        assert events(world)[-2:] == ["unlocked", "signed_in"]


def test_helpline_users_unlock(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    assert cli.main(["users", "unlock", "amina"]) == 2  # no schema yet
    assert "helpline db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "amina", "--password-stdin"]) == 0
    engine = make_engine(url)
    users = Users(session_factory(engine))
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            users.sign_in("amina", WRONG)
    capsys.readouterr()
    assert cli.main(["users", "list"]) == 0
    assert "locked until" in capsys.readouterr().out
    assert cli.main(["users", "unlock", "amina"]) == 0
    assert capsys.readouterr().out == "amina: unlocked, may sign in again\n"
    assert users.sign_in("amina", PASSWORD)[1].user.name == "amina"
    assert cli.main(["users", "unlock", "amina"]) == 0
    assert "amina: was not locked" in capsys.readouterr().out
    assert cli.main(["users", "unlock", "nobody"]) == 2
    assert capsys.readouterr().err == "users: there is no user nobody\n"
    assert cli.main(["users", "unlock", "Not Valid"]) == 2
    assert "a user name is 2 to 64 characters" in capsys.readouterr().err
    engine.dispose()


# -- HSTS ---------------------------------------------------------------------------------

async def test_every_console_response_asks_for_https_only(sqlite_world):
    assert HSTS == "max-age=31536000; includeSubDomains"
    async with Console(sqlite_world) as console:
        client = await console.browser()
        for path in ("/sign-in", "/", "/static/console.css", "/no-such-page"):
            response = await client.get(path, allow_redirects=False)
            assert response.headers["Strict-Transport-Security"] == HSTS, path
        refused = await console.sign_in("amina", WRONG)
        assert refused.headers["Strict-Transport-Security"] == HSTS


async def test_console_processes_sharing_redis_count_a_client_together(sqlite_world, redis_url):
    """With HELPLINE_REDIS_URL the waits hold across console processes and restarts: two
    throttles (two processes) on one Redis count one client's failures together, a third (a
    restarted process) finds the wait, and Redis keeps only an HMAC of the address, which it
    forgets a day after the last failure."""
    import redis

    from console.throttle import FORGET_HOURS, RedisClientThrottle

    clock, key = sqlite_world.clock, b"k" * 32
    first, second = (RedisClientThrottle(redis_url, key, clock=clock) for _ in range(2))
    for n in range(CLIENT_MAX_FAILURES):
        await (first if n % 2 else second).failed("203.0.113.7")
    restarted = RedisClientThrottle(redis_url, key, clock=clock)
    assert await restarted.wait_seconds("203.0.113.7") == CLIENT_FIRST_MINUTES * 60
    assert await first.wait_seconds("203.0.113.8") == 0
    clock.advance(minutes=CLIENT_FIRST_MINUTES, seconds=1)
    assert await second.wait_seconds("203.0.113.7") == 0
    other_key = RedisClientThrottle(redis_url, b"o" * 32, clock=clock)  # another deployment
    await other_key.failed("203.0.113.7")
    client = redis.Redis.from_url(redis_url)
    keys = client.keys("*")
    assert len(keys) == 2 and all(b"203.0.113" not in k for k in keys)
    assert all(b"203.0.113" not in v for k in keys for v in client.hgetall(k).values())
    assert all(0 < client.ttl(k) <= FORGET_HOURS * 3600 for k in keys)
    client.close()
    for throttle in (first, second, restarted, other_key):
        await throttle.aclose()


def test_helpline_console_shares_the_waits_through_redis_only_when_it_is_set(redis_url):
    import os

    from bot.settings import Settings
    from console.cli import _throttle
    from console.throttle import RedisClientThrottle

    with_redis = Settings.from_env({**os.environ, "HELPLINE_REDIS_URL": redis_url})
    without = Settings.from_env({k: v for k, v in os.environ.items()
                                 if k != "HELPLINE_REDIS_URL"})
    made = _throttle(with_redis, b"k" * 32)(lambda: None)
    assert isinstance(made, RedisClientThrottle) and made.url == redis_url
    assert _throttle(without, b"k" * 32) is None  # the console's own, in memory
