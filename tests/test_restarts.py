"""Issue 17 §5: PostgreSQL and Redis restarted under a running helpline.

The test starts its own PostgreSQL server (``initdb`` into a temporary folder, its own port,
trust authentication) and its own ``redis-server`` (its own port and folder, with the
append-only file written at every command, as production needs for routes to survive a
restart): never the machine's shared servers. On them run the real action server, Rasa
server (SQL tracker store on PostgreSQL, reply routes and rate counters in Redis) and the
console (``helpline console``), as ``tests/test_handoff_restart.py`` runs them.

- PostgreSQL stopped (``pg_ctl stop`` in fast mode, then in immediate mode, i.e. a crash)
  while a case is active: every case, transcript message and audit row written before is
  still there afterwards; meanwhile the console answers 503 "the database is unavailable"
  (not a server error), its open event stream pauses, and the person's channel answers
  (nothing) without the Rasa server falling over; once the server is back, the SAME processes
  serve a console page, relay the person's next message to the case and the caseworker's
  reply back to the person, and the event stream goes on.
- Redis stopped and started again: the conversation's reply route (the menu a typed number
  refers to) and its rate counter come back from the append-only file, and the processes
  reconnect by themselves: a typed "1" still means the first option of the menu shown before
  the restart, and the counter goes on from where it was.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cases.models import AuditEntry, Case, CaseMessage
from tests.test_handoff_restart import EN, Caseworker, Helpline, Person
from tests.utils.assistant import free_port
from tests.utils.channel_clients import _post, wait_until

pytestmark = [pytest.mark.model, pytest.mark.slow]

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
REDIS_SERVER = shutil.which("redis-server")
DOWN_SECONDS = 3  # how long a server stays down: long enough for requests to find it gone


def as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run ``command`` as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class Postgres:
    """A PostgreSQL server of the test's own in a temporary folder, stopped and started at will."""

    def __init__(self) -> None:
        self.bin = Path(PG_BIN[-1])
        self.folder = Path(tempfile.mkdtemp(prefix="helpline-restarts-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/helpline"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, *command: str) -> None:
        done = subprocess.run(as_postgres(*command), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stdout, done.stderr)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "postgres.log"), "-o", options, "-w", "start")

    def stop(self, mode: str) -> None:
        """``fast``: the clean shutdown an operator does; ``immediate``: as a crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self) -> None:
        admin = sa.create_engine(self.url.rsplit("/", 1)[0] + "/postgres",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text('CREATE DATABASE "helpline"'))
        admin.dispose()

    def remove(self) -> None:
        subprocess.run(as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                                   "immediate", "stop"), capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


class Redis:
    """A redis-server of the test's own, persistent (append-only file, fsync at every command)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="helpline-restarts-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 20, "redis-server")

    def _answers(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: Redis closes every connection and exits (the append-only file is already
        on disk, written at every command)."""
        self.process.terminate()
        self.process.wait(timeout=20)

    def get(self, key: str):
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return client.get(key)
        finally:
            client.close()

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def servers():
    if not PG_BIN or not (Path(PG_BIN[-1]) / "initdb").exists():
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
                    "apt-get install postgresql")
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    postgres, redis = Postgres(), Redis()
    try:
        postgres.start()
        postgres.create_database()
        redis.start()
        yield postgres, redis
    finally:
        postgres.remove()
        redis.remove()


@pytest.fixture(scope="module")
def helpline(model_path, tmp_path_factory, servers):
    postgres, redis = servers
    running = Helpline(tmp_path_factory.mktemp("restarts"), model_path, redis.url)
    running.database_url = postgres.url
    try:
        running.start()
        yield running
    finally:
        running.close()


def next_state(stream) -> str:
    """The next ``state`` event's data on the console's event stream (waits for it)."""
    while not stream.readline().startswith(b"event: state"):
        pass
    return stream.readline().decode("utf-8")


def pids(helpline: Helpline) -> dict[str, int]:
    return {name: process.pid for name, process in helpline.processes.items()}


def all_alive(helpline: Helpline) -> bool:
    return all(process.poll() is None for process in helpline.processes.values())


def snapshot(helpline: Helpline) -> dict[str, list]:
    """Every case, transcript message (still encrypted) and audit row, as stored."""
    engine = helpline.engine()
    try:
        with engine.connect() as connection:
            return {
                "cases": connection.execute(
                    sa.select(Case.id, Case.status, Case.caseworker).order_by(Case.id)).all(),
                "messages": connection.execute(
                    sa.select(CaseMessage.id, CaseMessage.case_id, CaseMessage.body)
                    .order_by(CaseMessage.id)).all(),
                "audit": connection.execute(
                    sa.select(AuditEntry.id, AuditEntry.action).order_by(AuditEntry.id)).all(),
            }
    finally:
        engine.dispose()


def kept(before: dict[str, list], after: dict[str, list]) -> None:
    """Everything stored before is still there, unchanged (new rows may follow it)."""
    for table, rows in before.items():
        assert after[table][:len(rows)] == rows, table


def test_postgresql_restarted_during_a_case_loses_nothing_and_the_processes_reconnect(
        helpline, servers):
    postgres, _ = servers
    amina = Caseworker(helpline, "amina")
    amina.sign_in()
    person = Person(helpline)
    person.asks_for_a_person()
    assert person.say("My employer keeps my passport.") == []
    [number] = amina.queue()
    amina.take(number)
    amina.reply(number, "I am Amina, a caseworker. Are you safe now?")
    assert person.wait_for_pushed() == ["I am Amina, a caseworker. Are you safe now?"]
    started = pids(helpline)
    # The case page's live stream, open across both restarts (a browser would not reopen it
    # after a 503): it pauses while the database is down and goes on afterwards.
    stream = amina.http.open(amina.url(f"/events?case={number}"), timeout=30)
    next_state(stream)

    for turn, mode in enumerate(("fast", "immediate")):
        before = snapshot(helpline)
        assert len(before["messages"]) == 2 + 2 * turn  # the message below was not kept
        postgres.stop(mode)
        try:
            # The console says what is wrong, on a page and in the API, not a server error.
            page = amina.get("/")
            assert page.status == 503, (mode, page.status, page.text[:300])
            assert "The database is unavailable" in page.text
            assert "Traceback" not in page.text
            api = amina.get(f"/api/cases/{number}/transcript")
            assert api.status == 503 and "database is unavailable" in api.json()["error"]
            # The person's channel answers (HTTP 200) and the Rasa server stays up; the
            # message cannot reach the case (Rasa keeps the turn in memory only, and the
            # stored conversation stays as it was).
            assert person.say("Are you there?") == []
            time.sleep(DOWN_SECONDS)
            assert all_alive(helpline)
        finally:
            postgres.start()
        # The same processes work again, without a restart of ours.
        assert amina.page("/")
        assert amina.mine() == [number]
        said = f"Yes, I am safe now ({mode})."
        assert person.say(said) == []  # still with the caseworker, the assistant quiet
        assert amina.transcript(number)[-1] == ("person", said)
        amina.reply(number, f"Good. I am still here ({mode}).")
        assert person.wait_for_pushed()[-1] == f"Good. I am still here ({mode})."
        assert wait_until(lambda: f"I am still here ({mode})" in next_state(stream), 30,
                          "the stream's state after the restart")
        kept(before, snapshot(helpline))
        assert pids(helpline) == started and all_alive(helpline)

    stream.close()
    amina.close(number, "information_given")
    assert person.wait_for_pushed() == [EN["utter_handoff_closed"]]
    assert person.say("/menu") == [EN["utter_menu"]]  # the assistant is back


def test_redis_restarted_keeps_routes_and_rate_counters_and_the_processes_reconnect(
        helpline, servers):
    from bot.privacy.routes import REDIS_PREFIX

    _, redis = servers
    control, person = Person(helpline), Person(helpline)
    for someone in (control, person):
        assert someone.say('/change_language{"language": "en"}')  # is it safe to write now?
        assert someone.say("/affirm")[0] == EN["utter_language_set"]
        assert someone.say("/menu") == [EN["utter_menu"]]
    first_option = control.say("1")  # what "1" answers right after the menu
    assert first_option and first_option != [EN["utter_menu"]]
    route_key = REDIS_PREFIX + person.conversation_id
    rate_key = f"helpline:limit:rate:{person.conversation_id}"
    route, count = redis.get(route_key), int(redis.get(rate_key))
    assert route is not None and count == 3
    started = pids(helpline)

    redis.stop()
    try:
        # The channel cannot read the conversation's route: the webhook answers an error
        # (a provider delivers again later), and the Rasa server stays up.
        status, _ = _post(f"{helpline.rasa}/webhooks/webchat/webhook", json.dumps(
            {"sender": person.session, "message": "hello"}).encode(),
            {"Content-Type": "application/json"})
        assert status >= 500, status
        time.sleep(DOWN_SECONDS)
        assert all_alive(helpline)
    finally:
        redis.start()
    assert redis.get(route_key) == route  # the append-only file brought it back
    assert int(redis.get(rate_key)) == count  # the message while down was not admitted
    # The same Rasa server reconnects: "1" is the first option of the menu it showed before,
    # and the conversation's counter goes on from where it was.
    assert person.say("1") == first_option
    assert int(redis.get(rate_key)) == count + 1
    assert pids(helpline) == started and all_alive(helpline)
