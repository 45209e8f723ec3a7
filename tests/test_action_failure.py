"""When the action server fails, the person still gets an answer (issue 17 §5).

Real processes: the Rasa server with the trained model, the action server killed and started
again mid-conversation, and a stand-in action server that answers too late. The Rasa side
answers alone (``bot/action_failures.py``): the catalog's ``actions_down`` in the person's
language with the emergency contacts; when the action server is back the conversation goes on
where it was (mid-questions: the next question comes).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.catalog import load_catalog
from tests.test_handoff import migrated
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop

pytestmark = [pytest.mark.model, pytest.mark.slow]
CATALOG = load_catalog()
TIMEOUT = 3  # HELPLINE_ACTION_TIMEOUT_SECONDS for this test's Rasa server
API_TOKEN = "failure-test-token-0123456789abcdefABCDEF"


def say(url: str, sender: str, text: str) -> list[str]:
    data = json.dumps({"sender": sender, "message": text}).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return [m.get("text") or "" for m in json.load(reply)]


def open_conversation(url: str, sender: str) -> None:
    """hello, then yes to "is it safe to write now?": the language menu."""
    assert say(url, sender, "hello") == [CATALOG.render("utter_first_contact", "en",
                                                        "helpline")["text"]]
    say(url, sender, "1")


def is_failure_answer(texts: list[str], language: str) -> bool:
    start = CATALOG.channel_text("actions_down", language)
    return len(texts) == 1 and texts[0].startswith(start) and "+999 100 000" in texts[0]


class Late(BaseHTTPRequestHandler):
    """An action server that answers after 30 s."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        time.sleep(30)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def servers(model_path, tmp_path_factory):
    logs = tmp_path_factory.mktemp("action-failure")
    # a migrated database with a caseworker account: a person can be handed off
    env = {"HELPLINE_DATABASE_URL": migrated(logs),
           "HELPLINE_SECRETS_FILE": str(logs / "secrets.json")}
    action_port, rasa_port = free_port(), free_port()
    state = {"actions": start_action_server(action_port, logs / "actions-1.log", **env)}
    try:
        rasa = start_rasa_server(model_path, rasa_port, f"http://127.0.0.1:{action_port}/webhook",
                                 logs / "rasa.log", ("--enable-api", "--auth-token", API_TOKEN),
                                 HELPLINE_ACTION_TIMEOUT_SECONDS=str(TIMEOUT), **env)
    except Exception:
        stop(state["actions"])
        raise

    def restart() -> None:
        state["actions"] = start_action_server(action_port, logs / "actions-2.log", **env)

    yield {"url": f"http://127.0.0.1:{rasa_port}/webhooks/helpline/webhook",
           "port": action_port, "state": state, "restart": restart,
           "secrets": logs / "secrets.json", "database": env["HELPLINE_DATABASE_URL"]}
    stop(rasa)
    if state["actions"] is not None:
        stop(state["actions"])


def test_killed_mid_questions_then_back_where_it_was(servers):
    url, sender = servers["url"], "failure-test-1"
    open_conversation(url, sender)
    say(url, sender, "2")  # Français
    texts = say(url, sender, "/check_situation")
    assert texts[-1].startswith(CATALOG.texts["fr"]["utter_screening_consent"].split("{")[0])
    assert say(url, sender, "/affirm") == [CATALOG.texts["fr"]["utter_ask_q_safe_now"]]

    stop(servers["state"]["actions"])
    servers["state"]["actions"] = None
    started = time.monotonic()
    answer = say(url, sender, "/affirm")  # yes, safe now: the form's validation fails
    assert is_failure_answer(answer, "fr"), answer
    assert time.monotonic() - started < 10  # a refused connection fails at once
    assert is_failure_answer(say(url, sender, "/affirm"), "fr")  # still down: the same

    servers["restart"]()
    texts = say(url, sender, "/affirm")
    assert texts and not is_failure_answer(texts, "fr")
    assert texts[-1] in {CATALOG.texts["fr"][f"utter_ask_{q}"] for q in
                         ("q_under_18", "q_free_to_leave", "q_documents")}, texts


def test_killed_during_a_hand_off_then_the_hand_off_goes_on(servers, monkeypatch):
    """A person waiting for a caseworker writes while the action server is down: the safe
    answer, nothing recorded meanwhile; once it is back, their messages reach the case again
    and they stay handed off (no menu, no questions)."""
    from bot.cases.queue import User
    from bot.cases.service import cases_for

    url, sender = servers["url"], "failure-test-handoff"
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(servers["secrets"]))
    open_conversation(url, sender)
    say(url, sender, "1")  # English
    assert say(url, sender, "/request_human")[0].startswith("A caseworker from")
    assert say(url, sender, "/affirm")[0].startswith(("You are in the queue",
                                                      "No caseworker is on shift"))
    assert say(url, sender, "they keep my passport") == []  # to the case, quietly
    cases = cases_for(servers["database"])
    [case] = cases.queue()  # the only case of this module's database
    cases.claim(case.id, User("amina"))

    stop(servers["state"]["actions"])
    servers["state"]["actions"] = None
    answer = say(url, sender, "are you there?")
    assert is_failure_answer(answer, "en"), answer
    servers["restart"]()
    assert say(url, sender, "I am still here") == []  # handed off, as before
    assert [line.text for line in cases.transcript(case.id, User("amina"))] == [
        "they keep my passport", "I am still here"]


def test_an_action_server_too_slow_gets_the_answer_after_the_timeout(servers):
    url, sender = servers["url"], "failure-test-2"
    open_conversation(url, sender)
    say(url, sender, "3")  # العربية
    stop(servers["state"]["actions"])
    servers["state"]["actions"] = None
    late = ThreadingHTTPServer(("127.0.0.1", servers["port"]), Late)
    late.daemon_threads = True
    thread = threading.Thread(target=late.serve_forever, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        answer = say(url, sender, "/find_services")
        waited = time.monotonic() - started
    finally:
        late.shutdown()
        late.server_close()
    assert is_failure_answer(answer, "ar"), answer
    # within a few seconds of the timeout (the issue asks 2 s; a busy 2-core machine runs
    # the NLU and the reply around it), never Rasa's five minutes
    assert TIMEOUT <= waited < TIMEOUT + 4, waited
    servers["restart"]()
    texts = say(url, sender, "/menu")
    assert texts and not is_failure_answer(texts, "ar")


def test_a_caseworkers_reply_through_the_api_fails_loudly_while_the_action_server_is_down(
        servers):
    """The console runs action_relay_caseworker through Rasa's API; with the action server
    down the API answers an error (it said 200), so the console's relay raises and the
    console withdraws the reply and says it was not sent (console/app.py reply)."""
    import asyncio

    from bot.action_failures import API_ACTIONS
    from console.relay import CLOSED_ACTION, RELAY_ACTION, RasaRelay, RelayError

    assert API_ACTIONS == {RELAY_ACTION, CLOSED_ACTION}
    url, sender = servers["url"], "failure-test-3"
    open_conversation(url, sender)
    relay = RasaRelay(url.split("/webhooks/")[0], API_TOKEN)

    from bot.privacy.keys import load_secrets
    from bot.privacy.pseudonyms import pseudonym

    class Case:  # the fields of bot.cases.queue.CaseView the relay reads
        conversation_id = pseudonym(load_secrets(servers["secrets"], environ={}).pseudonym_key,
                                    "helpline", sender)
        channel = "helpline"

    async def send() -> None:
        try:
            await relay.send(Case(), "a reply")
        finally:
            await relay.close()

    stop(servers["state"]["actions"])
    servers["state"]["actions"] = None
    with pytest.raises(RelayError, match="HTTP 500"):
        asyncio.run(send())
    servers["restart"]()
    asyncio.run(send())  # back: 200 (nothing waits in a transcript here: nothing is said)
