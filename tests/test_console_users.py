"""The console's users (``helpline users``, hashing, lock-out on PostgreSQL too), its canned
replies file, and the relay to the Rasa server's HTTP API."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import cli
from bot.cases.queue import CaseView
from bot.storage import make_engine, session_factory, upgrade
from console import cli as console_cli
from console.canned import CannedError, load_canned
from console.models import Caseworker
from console.relay import RasaRelay, RelayError
from console.users import LOCK_FIRST_MINUTES, MAX_FAILURES, SignInRefused, Users

PASSWORD = "a long enough password"


def test_users_add_list_disable(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    assert cli.main(["users", "list"]) == 2
    assert "helpline db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade"]) == 0
    capsys.readouterr()

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "amina", "--password-stdin"]) == 0
    assert "amina: created (caseworker" in capsys.readouterr().out
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(console_cli.getpass, "getpass", lambda prompt: next(answers))
    assert cli.main(["users", "add", "lead", "--supervisor", "--language", "fr"]) == 0
    assert "lead: created (supervisor, names in fr)" in capsys.readouterr().out

    answers = iter([PASSWORD, PASSWORD + "x"])
    assert cli.main(["users", "add", "bob"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["users", "add", "bob", "--password-stdin"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "amina", "--password-stdin"]) == 2
    assert "already a user amina" in capsys.readouterr().err
    assert cli.main(["users", "add", "Not Valid", "--password-stdin"]) == 2
    assert "a user name is 2 to 64 characters" in capsys.readouterr().err

    assert cli.main(["users", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:4] for line in listed] == [
        ["amina", "caseworker", "en", "active"], ["lead", "supervisor", "fr", "active"]]
    assert PASSWORD not in "".join(listed)

    assert cli.main(["users", "disable", "amina"]) == 0
    assert cli.main(["users", "disable", "nobody"]) == 2
    assert "there is no user nobody" in capsys.readouterr().err
    assert cli.main(["users", "list"]) == 0
    assert "amina\tcaseworker\ten\tdisabled" in capsys.readouterr().out

    engine = make_engine(url)
    with engine.connect() as connection:
        hashes = connection.execute(sa.select(Caseworker.password_hash)).scalars().all()
    engine.dispose()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_users_enable_and_password(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    assert cli.main(["users", "enable", "amina"]) == 2  # no schema yet
    assert "helpline db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "amina", "--password-stdin"]) == 0
    capsys.readouterr()
    engine = make_engine(url)
    users = Users(session_factory(engine))
    token, _ = users.sign_in("amina", PASSWORD)

    # enable: a disabled user may sign in again; unknown users and bad names are named.
    assert cli.main(["users", "disable", "amina"]) == 0
    assert users.session(token) is None  # disabling ends the sessions
    with pytest.raises(SignInRefused):
        users.sign_in("amina", PASSWORD)
    assert cli.main(["users", "enable", "amina"]) == 0
    assert capsys.readouterr().out == "amina: disabled, signed out everywhere\n" \
        "amina: enabled, may sign in again\n"
    assert cli.main(["users", "enable", "amina"]) == 0
    assert "amina: was not disabled" in capsys.readouterr().out
    assert cli.main(["users", "enable", "nobody"]) == 2
    assert capsys.readouterr().err == "users: there is no user nobody\n"
    assert cli.main(["users", "enable", "Not Valid"]) == 2
    assert "a user name is 2 to 64 characters" in capsys.readouterr().err
    token, _ = users.sign_in("amina", PASSWORD)

    # password: read like `add`, ends the lock-out and every session of the user.
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            users.sign_in("amina", "wrong password!!")
    new = "a brand new passphrase"
    monkeypatch.setattr("sys.stdin", io.StringIO(new + "\n"))
    assert cli.main(["users", "password", "amina", "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert out == "amina: password set, lock-out lifted, signed out everywhere\n"
    assert new not in out
    assert users.session(token) is None
    assert users.sign_in("amina", new)[1].user.name == "amina"  # not locked any more
    with pytest.raises(SignInRefused):
        users.sign_in("amina", PASSWORD)
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(console_cli.getpass, "getpass", lambda prompt: next(answers))
    assert cli.main(["users", "password", "amina"]) == 0
    assert users.sign_in("amina", PASSWORD)[1].user.name == "amina"
    capsys.readouterr()

    # Errors: nothing changes.
    answers = iter([new, new + "x"])
    assert cli.main(["users", "password", "amina"]) == 2
    assert "the two passwords differ; nothing changed" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["users", "password", "amina", "--password-stdin"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    asked = []
    monkeypatch.setattr(console_cli.getpass, "getpass", lambda prompt: asked.append(prompt))
    assert cli.main(["users", "password", "nobody"]) == 2
    assert capsys.readouterr().err == "users: there is no user nobody\n"
    assert asked == []  # told before typing a password for nothing
    assert users.sign_in("amina", PASSWORD)[1].user.name == "amina"

    # A disabled user's new password says the account is still disabled.
    assert cli.main(["users", "disable", "amina"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(new + "\n"))
    assert cli.main(["users", "password", "amina", "--password-stdin"]) == 0
    assert "still disabled: `helpline users enable amina`" in capsys.readouterr().out
    with pytest.raises(SignInRefused):
        users.sign_in("amina", new)
    engine.dispose()


def test_the_console_refuses_insecure_cookies_on_a_public_address(monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_BIND", "0.0.0.0")
    assert cli.main(["console", "--insecure-cookies"]) == 2
    assert "only for http://127.0.0.1" in capsys.readouterr().err


def test_sign_in_and_lock_out_on_postgresql(postgres_url):
    engine = make_engine(postgres_url)
    upgrade(engine)
    now = [dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)]
    users = Users(session_factory(engine), clock=lambda: now[0])
    users.add("amina", PASSWORD)
    token, signed = users.sign_in("amina", PASSWORD)
    assert signed.user.name == "amina" and users.session(token).csrf_token == signed.csrf_token
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            users.sign_in("amina", "wrong password!!")
    with pytest.raises(SignInRefused):
        users.sign_in("amina", PASSWORD)
    now[0] += dt.timedelta(minutes=LOCK_FIRST_MINUTES, seconds=1)
    assert users.sign_in("amina", PASSWORD)[1].user.name == "amina"
    assert users.signed_in_count() == 1
    users.disable("amina")
    assert users.session(token) is None and users.signed_in_count() == 0
    engine.dispose()


def test_every_canned_reply_has_a_short_text_in_every_language():
    replies = load_canned()
    assert len(replies) >= 6 and len({r.key for r in replies}) == len(replies)
    for reply in replies:
        assert set(reply.texts) == {"en", "fr", "ar", "es"} and reply.label


def test_a_broken_canned_file_names_every_problem(tmp_path):
    path = tmp_path / "canned.yml"
    path.write_text("canned:\n  hello:\n    label: Hi\n    en: Hello\n    fr: Bonjour {name}\n"
                    "    es: " + "a" * 400 + "\n", encoding="utf-8")
    with pytest.raises(CannedError) as raised:
        load_canned(path)
    message = str(raised.value)
    assert "hello.ar: missing" in message
    assert "hello.fr: the only placeholders are {contacts}, {confidentiality}" in message
    assert "hello.es: 400 characters" in message


def _case() -> CaseView:
    moment = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
    return CaseView(3, "c" + "a" * 32, "sms", "fr", "high", (), None, "active", "amina", None,
                    moment, moment, None)


async def test_the_rasa_relay_runs_the_relay_action_in_the_conversation():
    received = []

    async def endpoint(request: web.Request) -> web.Response:
        received.append((request.match_info["conversation"], request.match_info["what"],
                         dict(request.query), await request.json()))
        return web.json_response({"tracker": {}, "messages": []},
                                 status=500 if len(received) > 2 else 200)

    app = web.Application()
    app.router.add_post("/conversations/{conversation}/{what:.*}", endpoint)
    server = TestServer(app)
    await server.start_server()
    base = str(server.make_url(""))
    relay = RasaRelay(base, token="api-token")
    query = {"output_channel": "sms", "token": "api-token"}  # the case's channel, not "latest"
    conversation = "c" + "a" * 32
    try:
        await relay.send(_case(), "Bonjour, je suis là.")
        await relay.closed(_case())
        assert received == [  # the text itself never goes through Rasa's API
            (conversation, "execute", query, {"name": "action_relay_caseworker"}),
            (conversation, "execute", query, {"name": "action_handoff_closed"}),
        ]
        with pytest.raises(RelayError, match="HTTP 500"):
            await relay.send(_case(), "again")
    finally:
        await relay.close()
        await server.close()
    with pytest.raises(RelayError, match="cannot be reached"):
        unreachable = RasaRelay(base, timeout_seconds=2)
        try:
            await unreachable.send(_case(), "hello")
        finally:
            await unreachable.close()


TUTEO = {"tú", "tu", "te", "ti", "puedes", "quieres", "necesitas", "llama", "envíes", "tómate",
         "escucharte", "ayudarte", "estás", "decides"}


def test_the_spanish_canned_replies_say_usted_as_the_assistant_does():
    for reply in load_canned():
        words = set(re.findall(r"\w+", reply.texts["es"].lower()))
        assert not words & TUTEO, (reply.key, words & TUTEO)


def test_a_canned_reply_is_filled_or_not_offered():
    replies = {r.key: r for r in load_canned()}
    assert replies["confidentiality"].fill("en", {"contacts": "x"}) is None
    assert replies["confidentiality"].fill("en", {"confidentiality": "Kept."}) == "Kept."
    danger = replies["danger_now"].fill("ar", {"contacts": "+999 100 000"})
    assert "+999 100 000" in danger and "{" not in danger
    assert replies["take_your_time"].fill("es", {}) == "Tómese su tiempo. Sigo aquí."
