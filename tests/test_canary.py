"""The privacy canary: fake identifying details go in, and none of them is anywhere afterwards.

Scripted conversations over the REST channel carry canaries (``tests/utils/canary.py``) in
their messages, metadata and sender ids, through real action and Rasa server processes
logging at DEBUG. Afterwards every byte the system left is scanned: the SQLite file or a
PostgreSQL dump, every Redis key and value, every log file, the processes' working and
temporary directories, and the project directory's changed files. Zero hits are allowed, in
any form (case-folded, word by word, digits only); a hit names its place.

Runs on SQLite + in-memory routes, on PostgreSQL + Redis routes, and with the tracker in Redis.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from bot.privacy.keys import load_secrets
from bot.privacy.pseudonyms import pseudonym
from bot.privacy.routes import REDIS_PREFIX
from bot.settings import PROJECT_ROOT
from tests.utils import canary
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop
from tests.utils.directory import load_sample

A, B, C, D = canary.PHONES[0], canary.EMAILS[0], canary.PHONES[4], canary.PHONES[3]
METADATA = {"From": canary.PHONES[1], "profile": {"name": canary.NAMES[0], "email": canary.EMAILS[1]},
            "address": canary.ADDRESSES[0], "ids": [canary.ID_NUMBERS[0]]}

# (sender, message or body): typed digits pick menu options, free text carries canaries; D
# looks for services from a shared position.
SCRIPT = [
    (A, f"hello, my name is {canary.NAMES[0]}"),
    (A, "1"),  # English
    (A, f"a man called {canary.NAMES[1]} offered me a job abroad, call me on {canary.PHONES[2]}"),
    (A, "check my situation"),
    (A, "1"),  # yes to the questions
    (A, "yes"),
    (A, f"my passport {canary.ID_NUMBERS[0]} is kept at {canary.ADDRESSES[0]}"),
    (A, "no"),
    (D, f"I live at {canary.ADDRESSES[0]}, my id is {canary.ID_NUMBERS[1]}"),
    (D, "2"),
    (D, "/find_services"),
    (D, "1"),  # safe shelter
    (D, {"location": {"latitude": float(canary.COORDINATES[0]),
                      "longitude": float(canary.COORDINATES[1])}}),
    (D, "more"),
    (B, f"write to me at {canary.EMAILS[0]} or {canary.PHONES[3]}"),
    (B, "check my situation"),
    (B, "exit"),
    (C, f"I am {canary.NAMES[1]}, {canary.EMAILS[1]}, {canary.PHONES[1]}"),
    (C, "delete my data"),
]


def post(url: str, body: dict) -> list:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        assert reply.status == 200
        return json.load(reply)


def test_the_scanner_finds_a_canary_in_every_form(tmp_path):
    (tmp_path / "a.log").write_text("x TEMPERANCE OYELARAN y")
    (tmp_path / "b.db").write_bytes(b"\x00\x01 999-555-0142 \x00")
    (tmp_path / "c.txt").write_text("only quillfeather here")
    (tmp_path / "clean.txt").write_text("conversation c0123 utter_menu 2026-11-25 [redacted]")
    scanner = canary.Scanner()
    assert scanner.scan_tree(tmp_path) == 4
    found = {(Path(h.place).name, h.form) for h in scanner.hits}
    assert ("a.log", "case-folded") in found
    assert ("b.db", "digits-only") in found
    assert ("c.txt", "word") in found
    assert not any("clean.txt" in h.place for h in scanner.hits)
    assert "a.log" in scanner.report() and "OYELARAN" in scanner.report()


CONFIGS = {
    "sqlite+memory": {"tracker": "sql", "database": "sqlite", "redis": False},
    "postgresql+redis": {"tracker": "sql", "database": "postgresql", "redis": True},
    "redis+redis": {"tracker": "redis", "database": "sqlite", "redis": True},
}


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS))
def test_no_canary_survives_anywhere(config, model_path, tmp_path, request):
    started = time.time() - 1
    spec = CONFIGS[config]
    state = tmp_path / "state"
    temp = tmp_path / "tmp"
    state.mkdir()
    temp.mkdir()
    env = {"HELPLINE_SECRETS_FILE": str(state / "secrets.json"),
           "HELPLINE_TRACKER_STORE": spec["tracker"], "HELPLINE_LOG_LEVEL": "DEBUG",
           "TMPDIR": str(temp), "HELPLINE_REDIS_URL": ""}
    database = (request.getfixturevalue("postgres_url") if spec["database"] == "postgresql"
                else f"sqlite:///{state / 'helpline.db'}")
    env["HELPLINE_DATABASE_URL"] = load_sample(database)  # the search really runs
    if spec["redis"]:
        env["HELPLINE_REDIS_URL"] = request.getfixturevalue("redis_url")

    action_port, rasa_port = free_port(), free_port()
    action_log, rasa_log, rasa_file_log = (tmp_path / "actions.out", tmp_path / "rasa.out",
                                           tmp_path / "rasa-debug.log")
    actions = start_action_server(action_port, action_log, ("--debug",), **env)
    try:
        rasa = start_rasa_server(model_path, rasa_port, f"http://127.0.0.1:{action_port}/webhook",
                                 rasa_log, ("--debug", "--log-file", str(rasa_file_log)), **env)
    except Exception:
        stop(actions)
        raise
    url = f"http://127.0.0.1:{rasa_port}/webhooks/helpline/webhook"
    replies = {}
    try:
        for sender, message in SCRIPT:
            body = message if isinstance(message, dict) else {"message": message}
            replies.setdefault(sender, []).append(
                post(url, {"sender": sender, **body, "metadata": METADATA}))
    finally:
        stop(rasa)
        stop(actions)

    # The conversations really happened: the bot answered every message, the search too.
    assert all(turn for turns in replies.values() for turn in turns)
    assert replies[D][-2][0]["text"].startswith("Safe shelter, near you:")
    # The logs really are at DEBUG, and Rasa really did try to log the messages' text.
    debug_log = rasa_file_log.read_text(encoding="utf-8", errors="replace")
    assert "[DEBUG]" in debug_log and '"parse_data_text": ' in debug_log

    # Erasure happened for the quick exit (B) and forget-me (C); A and D are kept, redacted.
    key = load_secrets(state / "secrets.json", environ={}).pseudonym_key
    ids = {s: pseudonym(key, "helpline", s) for s in (A, B, C, D)}
    if spec["tracker"] == "sql":
        engine = sa.create_engine(database)
        with engine.connect() as connection:
            kept = {row[0] for row in connection.execute(sa.text("SELECT DISTINCT sender_id FROM events"))}
        engine.dispose()
    else:
        client = redis.Redis.from_url(env["HELPLINE_REDIS_URL"], decode_responses=True)
        kept = {k.rsplit(":", 1)[-1] for k in client.keys("helpline:tracker:*")}
    assert kept == {ids[A], ids[D]}, "quick exit / forget me did not erase, or A/D were lost"
    if spec["redis"]:
        client = redis.Redis.from_url(env["HELPLINE_REDIS_URL"], decode_responses=True)
        routes = {k[len(REDIS_PREFIX):] for k in client.keys(REDIS_PREFIX + "*")}
        assert routes == {ids[A], ids[D]}, "the reply routes of erased conversations remain"

    scanner = canary.Scanner()
    for path in (action_log, rasa_log, rasa_file_log):
        scanner.scan_bytes(str(path), path.read_bytes())
    assert scanner.scan_tree(tmp_path) >= 4  # state (database, secrets), temporary files, logs
    scanner.scan_tree(PROJECT_ROOT, since=started)
    if spec["database"] == "postgresql":
        dump = scanner.scan_postgres(database)
        assert ids[A] in dump  # the dump is of the right database
    if spec["redis"]:
        assert scanner.scan_redis(env["HELPLINE_REDIS_URL"]) >= 2
    assert not scanner.hits, (
        f"{len(scanner.hits)} canary hit(s) in {config}:\n{scanner.report()}"
    )
