"""The privacy canary: fake identifying details go in, and none of them is anywhere afterwards.

Scripted conversations over every channel carry canaries (``tests/utils/canary.py``): over
SMS (the sender's number, signed Twilio webhooks, replies to a fake Twilio API), Telegram (the
chat id, the person's names and username, replies to a fake Bot API), the web chat and the
REST channel (messages, metadata, sender ids, a shared position), through real action and Rasa
server processes logging at DEBUG. Afterwards every byte the system left is scanned: the SQLite file or a
PostgreSQL dump, every Redis key and value, every log file, the processes' working and
temporary directories, and the project directory's changed files. Zero hits are allowed, in
any form (case-folded, word by word, digits only); a hit names its place.

Runs on SQLite + in-memory routes, on PostgreSQL + Redis routes, and with the tracker in Redis.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import aiohttp

import pytest
import redis
import sqlalchemy as sa

from bot import serve
from bot.privacy.keys import load_secrets
from bot.privacy.pseudonyms import pseudonym
from bot.privacy.routes import REDIS_PREFIX
from bot.settings import PROJECT_ROOT
from tests.utils import canary
from tests.utils.assistant import free_port, quiet_env, stop, wait_for
from tests.utils.channel_clients import (send_json, send_sms, send_telegram, telegram_env,
                                         telegram_text, wait_until, write_credentials)
from tests.utils.directory import load_sample
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio

A, D = canary.PHONES[0], canary.PHONES[3]  # an SMS sender, a REST sender id
B = int(canary.PHONES[1].lstrip("+"))  # a Telegram chat id with a canary's digits
C = "c0ffee" * 5 + "42"  # the web page's session id (random hex: never identifying)
METADATA = {"From": canary.PHONES[1], "profile": {"name": canary.NAMES[0], "email": canary.EMAILS[1]},
            "address": canary.ADDRESSES[0], "ids": [canary.ID_NUMBERS[0]]}
TELEGRAM_NAMES = {"first_name": canary.NAMES[1].split()[0], "last_name": canary.NAMES[1].split()[1],
                  "username": canary.EMAILS[1].split("@")[0].replace(".", "_")}

# (channel, sender, message or body): typed digits pick menu options, free text carries
# canaries; D looks for services from a shared position; B leaves by quick exit, C by forget me.
# A first message is asked "is it safe to write now?" (actions/first_contact.py): "1" is yes.
SCRIPT = [
    ("sms", A, f"hello, my name is {canary.NAMES[0]}"),
    ("sms", A, "1"),  # yes, safe to write: the language menu
    ("sms", A, "1"),  # English
    ("sms", A, f"a man called {canary.NAMES[1]} offered me a job abroad, call me on {canary.PHONES[2]}"),
    ("sms", A, "check my situation"),
    ("sms", A, "1"),  # yes to the questions
    ("sms", A, "yes"),
    ("sms", A, f"my passport {canary.ID_NUMBERS[0]} is kept at {canary.ADDRESSES[0]}"),
    ("sms", A, "no"),
    ("sms", A, "/menu"),  # ends the questions
    ("sms", A, "/request_human"),  # a caseworker account exists: the consent question
    ("sms", A, "1"),  # yes: the case is queued
    ("sms", A, f"I am {canary.NAMES[0]}, my brother's number is {canary.PHONES[4]}"),  # relayed
    ("helpline", D, f"I live at {canary.ADDRESSES[0]}, my id is {canary.ID_NUMBERS[1]}"),
    ("helpline", D, "1"),  # yes, safe to write
    ("helpline", D, "2"),
    ("helpline", D, "/find_services"),
    ("helpline", D, "1"),  # safe shelter
    ("helpline", D, {"location": {"latitude": float(canary.COORDINATES[0]),
                                  "longitude": float(canary.COORDINATES[1])}}),
    ("helpline", D, "more"),
    ("telegram", B, f"write to me at {canary.EMAILS[0]} or {canary.PHONES[3]}"),
    ("telegram", B, "check my situation"),
    ("telegram", B, "exit"),
    ("webchat", C, f"I am {canary.NAMES[1]}, {canary.EMAILS[1]}, {canary.PHONES[1]}"),
    # Messages that start with "/" (issue 17 §3): text with the slash dropped, and a forged
    # payload whose entity is not the assistant's own; Rasa would warn quoting them whole.
    ("webchat", C, f"/{canary.NAMES[0].split()[1].lower()} {canary.ADDRESSES[0]}"),
    ("webchat", C, '/greet{"name": "%s", "phone": "%s"}' % (canary.NAMES[0], canary.PHONES[0])),
    ("webchat", C, "delete my data"),
]
SENDS = {"sms": sum(1 for c, _, _ in SCRIPT if c == "sms") - 1,  # one per turn, none relayed
         "telegram": 1 + 1 + 1}  # at least one message per turn


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
           "TMPDIR": str(temp), "HELPLINE_REDIS_URL": "",
           # Python warnings on, as scripts/start leaves them: Rasa warns quoting a message
           # (issue 17 §3); they go through the log scrubber into the scanned logs.
           "PYTHONWARNINGS": "default"}
    database = (request.getfixturevalue("postgres_url") if spec["database"] == "postgresql"
                else f"sqlite:///{state / 'helpline.db'}")
    env["HELPLINE_DATABASE_URL"] = load_sample(database)  # the search really runs
    add_caseworker(database)  # so that A's request for a person opens a case
    if spec["redis"]:
        env["HELPLINE_REDIS_URL"] = request.getfixturevalue("redis_url")

    action_port, rasa_port, console_port = free_port(), free_port(), free_port()
    twilio, telegram = FakeTwilio().start(), FakeTelegram().start()
    credentials = write_credentials(tmp_path / "credentials.yml", rasa_port, twilio, telegram)
    action_log, rasa_log, rasa_file_log, console_log = (
        tmp_path / "actions.out", tmp_path / "rasa.out", tmp_path / "rasa-debug.log",
        tmp_path / "console.out")
    # The servers as scripts/start starts them (`helpline serve`, bot/serve.py), the API on
    # with a token read from the environment, and the console beside them (issue 17 §3).
    env.update(HELPLINE_RASA_TOKEN=TOKEN, HELPLINE_RASA_PORT=str(rasa_port),
               HELPLINE_ACTION_PORT=str(action_port), HELPLINE_CONSOLE_PORT=str(console_port),
               HELPLINE_ACTION_URL=f"http://127.0.0.1:{action_port}/webhook",
               **telegram_env(telegram))
    servers = []
    try:
        servers.append(serve_process(action_log, env, "actions", "--debug"))
        wait_for(f"http://127.0.0.1:{action_port}/health", servers[-1])
        servers.append(serve_process(rasa_log, env, "rasa", "--debug", "--log-file",
                                     str(rasa_file_log), "--credentials", str(credentials)))
        wait_for(f"http://127.0.0.1:{rasa_port}/webhooks/helpline/", servers[-1], seconds=240)
        servers.append(serve_process(console_log, env, "console"))
        wait_for(f"http://127.0.0.1:{console_port}/sign-in", servers[-1])
    except Exception:
        for process in reversed(servers):
            stop(process)
        twilio.stop()
        telegram.stop()
        raise
    replies = {}
    try:
        for channel, sender, message in SCRIPT:
            body = message if isinstance(message, dict) else {"message": message}
            if channel == "sms":
                assert send_sms(rasa_port, twilio.auth_token, sender, message) == 200
            elif channel == "telegram":
                assert send_telegram(rasa_port, telegram_text(sender, message, **TELEGRAM_NAMES)) == 200
            else:
                extra = {"metadata": METADATA} if channel == "helpline" else {}
                replies.setdefault(sender, []).append(
                    send_json(rasa_port, channel, {"sender": sender, **body, **extra}))
        # The SMS and Telegram replies are sent in the background: every turn was answered.
        wait_until(lambda: len(twilio.delivered()) >= SENDS["sms"], what="the SMS replies")
        wait_until(lambda: len(telegram.sent()) >= SENDS["telegram"], what="the Telegram replies")
        # A caseworker takes A's case in the console and answers with a canary: it goes
        # through the console, Rasa's API (the token) and the action server to A's SMS.
        asyncio.run(caseworker_replies(console_port, CASEWORKER_REPLY))
        wait_until(lambda: len(twilio.delivered()) >= SENDS["sms"] + 1,
                   what="the caseworker's reply by SMS")
    finally:
        for process in reversed(servers):
            stop(process)
        twilio.stop()
        telegram.stop()

    # The conversations really happened: the bot answered every message, the search too.
    assert all(turn for turns in replies.values() for turn in turns)
    assert replies[D][-2][0]["text"].startswith("Safe shelter, near you:")
    assert {m["To"] for m in twilio.delivered()} == {A}
    assert {str(m["chat_id"]) for m in telegram.sent()} == {str(B)}
    # The logs really are at DEBUG, and Rasa really did try to log the messages' text.
    debug_log = rasa_file_log.read_text(encoding="utf-8", errors="replace")
    assert "[DEBUG]" in debug_log and '"parse_data_text": ' in debug_log

    # Erasure happened for the quick exit (B) and forget-me (C); A and D are kept, redacted.
    key = load_secrets(state / "secrets.json", environ={}).pseudonym_key
    ids = {A: pseudonym(key, "sms", A), B: pseudonym(key, "telegram", str(B)),
           C: pseudonym(key, "webchat", C), D: pseudonym(key, "helpline", D)}
    if spec["tracker"] == "sql":
        engine = sa.create_engine(database)
        with engine.connect() as connection:
            kept = {row[0] for row in connection.execute(sa.text("SELECT DISTINCT sender_id FROM events"))}
        engine.dispose()
    else:
        client = redis.Redis.from_url(env["HELPLINE_REDIS_URL"], decode_responses=True)
        kept = {k.rsplit(":", 1)[-1] for k in client.keys("helpline:tracker:*")}
    assert kept == {ids[A], ids[D]}, "quick exit / forget me did not erase, or A/D were lost"
    # A's case holds the relayed message, encrypted (the scan below finds no canary in it).
    engine = sa.create_engine(database)
    with engine.connect() as connection:
        cases = connection.execute(sa.text("SELECT conversation_id, status FROM cases")).all()
        relayed = connection.execute(sa.text("SELECT count(*) FROM case_messages")).scalar()
    engine.dispose()
    assert cases == [(ids[A], "active")] and relayed == 2  # the person's, the caseworker's
    assert twilio.delivered()[-1]["Body"].startswith(CASEWORKER_REPLY.split(",")[0])
    if spec["redis"]:
        client = redis.Redis.from_url(env["HELPLINE_REDIS_URL"], decode_responses=True)
        routes = {k[len(REDIS_PREFIX):] for k in client.keys(REDIS_PREFIX + "*")}
        assert routes == {ids[A], ids[D]}, "the reply routes of erased conversations remain"

    scanner = canary.Scanner()
    assert console_log.read_bytes()  # the console did log (its access log at least)
    for path in (action_log, rasa_log, rasa_file_log, console_log):
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


TOKEN = "canary-test-api-token-0123456789abcdefABCDEF"
CASEWORKER_REPLY = (f"Hello, I am from the team, is {canary.NAMES[1]} your name? I can call "
                    f"{canary.PHONES[2]}")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def serve_process(log: Path, env: dict, kind: str, *extra: str) -> subprocess.Popen:
    """A server started with the command scripts/start runs (``helpline serve KIND``)."""
    with open(log, "wb") as handle:
        return subprocess.Popen(serve.command(kind, *extra), cwd=PROJECT_ROOT,
                                env=quiet_env(**env), stdout=handle, stderr=subprocess.STDOUT)


async def caseworker_replies(port: int, text: str) -> None:
    """Signs in as the caseworker, takes the one waiting case and sends ``text``."""
    base = f"http://127.0.0.1:{port}"
    # the console's cookies are Secure (as behind nginx); this origin is loopback http
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
    async with aiohttp.ClientSession(base, cookie_jar=jar) as client:
        async with client.get("/sign-in") as page:
            token = CSRF_FIELD.search(await page.text()).group(1)
        async with client.post("/sign-in", data={"name": "canary-desk", "csrf": token,
                                                 "password": "a long enough password"}) as signed:
            queue = await signed.text()
            assert signed.status == 200 and "Signed in as" in queue, signed.status
        number = re.search(r'action="/cases/(\d+)/take"', queue).group(1)
        csrf = CSRF_META.search(queue).group(1)
        async with client.post(f"/cases/{number}/take", data={"csrf": csrf}) as taken:
            assert taken.status == 200, await taken.text()
        async with client.post(f"/cases/{number}/reply", data={"csrf": csrf, "text": text}) as sent:
            assert sent.status == 200 and "not sent" not in await sent.text(), sent.status


def add_caseworker(database: str) -> None:
    from console.users import Users
    from bot.storage import make_engine, session_factory

    engine = make_engine(database)
    Users(session_factory(engine)).add("canary-desk", "a long enough password")
    engine.dispose()
