"""The hand-off the whole way over real HTTP: a person on the web chat, the real Rasa server
(with its HTTP API and a token) and action server on a migrated database with a caseworker
account, and the console's own relay (console/relay.py) carrying the caseworker's reply and
the close; the page's poll receives both."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.cases.queue import User
from bot.cases.service import cases_for
from bot.catalog import load_catalog
from console.relay import RasaRelay, RelayError
from tests.test_handoff import migrated
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop
from tests.utils.channel_clients import send_json, write_credentials

pytestmark = [pytest.mark.model, pytest.mark.slow]
CATALOG = load_catalog()
TOKEN = "handoff-process-test-token"
SESSION = "ab" * 16
AMINA = User("amina")


@pytest.fixture(scope="module")
def rasa(model_path, tmp_path_factory):
    """(Rasa port, database URL) for servers sharing one migrated database and secrets."""
    folder = tmp_path_factory.mktemp("handoff-process")
    url = migrated(folder)
    env = {"HELPLINE_DATABASE_URL": url, "HELPLINE_SECRETS_FILE": str(folder / "secrets.json")}
    action_port, rasa_port = free_port(), free_port()
    actions = start_action_server(action_port, folder / "actions.log", **env)
    try:
        server = start_rasa_server(
            model_path, rasa_port, f"http://127.0.0.1:{action_port}/webhook", folder / "rasa.log",
            ("--enable-api", "--auth-token", TOKEN),
            credentials=str(write_credentials(folder / "credentials.yml", rasa_port)), **env)
    except Exception:
        stop(actions)
        raise
    yield rasa_port, url, folder / "secrets.json"
    stop(server)
    stop(actions)


def say(port: int, message: str) -> list[str]:
    return [m["text"] for m in send_json(port, "webchat", {"sender": SESSION, "message": message})]


def poll(port: int) -> list[str]:
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/webchat/poll",
                                     json.dumps({"sender": SESSION}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return [m["text"] for m in json.load(reply)]


def test_a_person_on_the_web_chat_and_a_caseworker_in_the_console(rasa, monkeypatch):
    port, url, secrets = rasa
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(secrets))  # the console's, the servers'
    say(port, '/change_language{"language": "en"}')
    assert say(port, "/request_human")[0].startswith("A caseworker from")
    reply = say(port, "/affirm")[0]
    assert reply.startswith(("You are in the queue", "No caseworker is on shift"))
    assert say(port, "I work in a restaurant and they keep my papers") == []  # quiet
    cases = cases_for(url)
    [case] = cases.queue()
    cases.claim(case.id, AMINA)
    assert [line.text for line in cases.transcript(case.id, AMINA)] == [
        "I work in a restaurant and they keep my papers"]

    async def console_side() -> None:
        relay = RasaRelay(f"http://127.0.0.1:{port}", TOKEN)
        wrong = RasaRelay(f"http://127.0.0.1:{port}", "not-the-token")
        try:
            cases.record(case.id, "caseworker", "Hello, I am Amina from the team.", AMINA)
            await relay.send(case, "Hello, I am Amina from the team.")
            with pytest.raises(RelayError, match="HTTP 401"):
                await wrong.send(case, "")
        finally:
            await relay.close()
            await wrong.close()

    asyncio.run(console_side())
    assert poll(port) == ["Hello, I am Amina from the team."]
    assert poll(port) == []
    assert say(port, "thank you") == []  # still with the caseworker

    async def close_it() -> None:
        relay = RasaRelay(f"http://127.0.0.1:{port}", TOKEN)
        try:
            await relay.closed(cases.close(case.id, AMINA, "referred"))
        finally:
            await relay.close()

    asyncio.run(close_it())
    assert poll(port) == [CATALOG.texts["en"]["utter_handoff_closed"]]
    assert say(port, "/menu") == [CATALOG.texts["en"]["utter_menu"]]  # the assistant is back
