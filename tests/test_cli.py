"""The helpline command: configuration check, model fingerprint, terminal chat."""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bot import cli
from bot.settings import PROJECT_ROOT, Settings


def test_check_passes_on_the_shipped_configuration():
    assert cli.check(Settings.from_env({})) == []


def test_check_reports_a_broken_deployment(tmp_path):
    broken = tmp_path / "deployment.yml"
    broken.write_text((PROJECT_ROOT / "deploy" / "sample.yml").read_text(encoding="utf-8")
                      .replace("  LY:\n", "  LY: []\n  XX:\n"), encoding="utf-8")
    problems = cli.check(Settings.from_env({"HELPLINE_DEPLOYMENT": str(broken)}))
    assert len(problems) == 1 and "emergency_contacts.LY: no emergency contact given" in problems[0]


def test_main_exits_2_with_the_problem_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(tmp_path / "missing.yml"))
    assert cli.main(["check"]) == 2
    assert "cannot read the file" in capsys.readouterr().err
    monkeypatch.setenv("HELPLINE_RASA_PORT", "abc")
    assert cli.main(["check"]) == 2
    assert "HELPLINE_RASA_PORT" in capsys.readouterr().err


def test_the_fingerprint_follows_the_training_inputs(tmp_path):
    for item in cli.TRAINING_INPUTS:
        source = PROJECT_ROOT / item
        target = tmp_path / item
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    first = cli.fingerprint(tmp_path)
    assert cli.fingerprint(tmp_path) == first
    (tmp_path / "README.md").write_text("not a training input", encoding="utf-8")
    assert cli.fingerprint(tmp_path) == first
    with open(tmp_path / "data" / "nlu" / "en" / "basics.yml", "a", encoding="utf-8") as handle:
        handle.write("\n")
    second = cli.fingerprint(tmp_path)
    assert second != first
    # the place names and the urgency corpus are trained into the model too
    for changed in ("data/gazetteer/places.csv", "data/urgency/en.yml"):
        with open(tmp_path / changed, "a", encoding="utf-8") as handle:
            handle.write("\n")
        assert cli.fingerprint(tmp_path) != second
        second = cli.fingerprint(tmp_path)


class _FakeAssistant(BaseHTTPRequestHandler):
    received: list = []
    polls: list = []
    pushed: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/poll"):  # what was pushed since: given once
            _FakeAssistant.polls.append(body)
            reply = json.dumps(_FakeAssistant.pushed)
            _FakeAssistant.pushed = []
        else:
            _FakeAssistant.received.append(body)
            reply = json.dumps([{"text": "Pick one",
                                 "buttons": [{"title": "Yes", "payload": "/affirm"},
                                             {"title": "No", "payload": "/deny"}]}])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_assistant():
    server = HTTPServer(("127.0.0.1", 0), _FakeAssistant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeAssistant.received, _FakeAssistant.polls = [], []
    _FakeAssistant.pushed = [{"text": "A caseworker's reply"}]
    yield f"http://127.0.0.1:{server.server_port}/webhooks/helpline/webhook"
    server.shutdown()


def test_chat_numbers_the_buttons_and_keeps_one_sender(fake_assistant, capsys):
    cli.chat(fake_assistant, lines=["hello", "", "1", "  ", "/bye", "never sent"])
    out = capsys.readouterr().out
    assert "bot> Pick one" in out and "     1. Yes" in out and "     2. No" in out
    assert [b["message"] for b in _FakeAssistant.received] == ["hello", "1"]
    # an empty line asks for pushed messages (a caseworker's reply), with the same sender
    assert "bot> A caseworker's reply" in out and out.count("[no new message]") == 1
    assert len(_FakeAssistant.polls) == 2
    assert len({b["sender"] for b in _FakeAssistant.received + _FakeAssistant.polls}) == 1


def test_chat_says_when_the_assistant_is_unreachable(capsys):
    cli.chat("http://127.0.0.1:9/webhooks/helpline/webhook", lines=["hello"])
    assert "cannot reach the assistant" in capsys.readouterr().out


# -- issue 17 §1: `helpline check` (which scripts/start runs first) refuses a weak Rasa API
# token and a setting that would expose the API or the REST channel without the proxy.

TOKEN = "Zq3_vL9-xR2mT8kWp4Yb7NcJ0hGs5FdA1e"


def test_check_refuses_a_weak_token(capsys, monkeypatch):
    monkeypatch.setenv("HELPLINE_RASA_TOKEN", "secret")
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert "HELPLINE_RASA_TOKEN is 6 characters; it must be at least 32" in err
    assert "secrets.token_urlsafe(32)" in err


def test_check_accepts_a_strong_token_on_loopback(capsys, monkeypatch):
    monkeypatch.setenv("HELPLINE_RASA_TOKEN", TOKEN)
    assert cli.main(["check"]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_check_refuses_the_api_or_the_rest_channel_on_another_address(capsys, monkeypatch):
    """The shipped credentials.yml opens the REST channel (local use and tests)."""
    monkeypatch.setenv("HELPLINE_BIND", "0.0.0.0")
    monkeypatch.setenv("HELPLINE_RASA_TOKEN", TOKEN)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert "with HELPLINE_RASA_TOKEN set would put Rasa's HTTP API" in err
    assert "channels.rest.HelplineRestInput channel of credentials.yml" in err
    assert err.count("set HELPLINE_BIND=127.0.0.1 and put nginx in front") == 2
    assert TOKEN not in err


def test_the_exposure_check_reads_the_channel_names_of_the_credentials_file(tmp_path):
    settings = Settings.from_env({"HELPLINE_BIND": "10.8.0.1"})
    production = tmp_path / "credentials.yml"
    production.write_text((PROJECT_ROOT / "deploy" / "credentials.sample.yml").read_text())
    assert cli.check_exposure(settings, production) == []  # no ${VAR} needs to be set
    production.write_text("rest: {}\nchannels.webchat.WebChatInput: {}\n")
    assert "the rest channel" in cli.check_exposure(settings, production)[0]
    production.write_text("- a list\n")
    assert cli.check_exposure(settings, production) == [
        "credentials.yml: expected a mapping of channels"]
    assert cli.check_exposure(settings, tmp_path / "missing.yml") == []


def test_scripts_start_checks_first_and_keeps_the_action_server_on_loopback(monkeypatch):
    """scripts/start runs `helpline check` (set -e) before it starts any server, starts them
    through `helpline serve` (bot/serve.py: the token read from the environment, never on a
    command line), and the action server listens on 127.0.0.1 whatever HELPLINE_BIND says."""
    from bot import serve

    script = (PROJECT_ROOT / "scripts" / "start").read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    assert "set -euo pipefail" in lines
    check = lines.index("helpline check")
    starts = [i for i, line in enumerate(lines) if "helpline serve" in line]
    assert len(starts) == 3 and check < min(starts)
    assert lines[starts[0]].startswith("helpline serve actions")
    assert "rasa run" not in script and "--auth-token" not in script

    ran = []
    monkeypatch.setattr(serve, "run_rasa", lambda argv, token=None: ran.append(
        (argv, os.environ.get("SANIC_HOST"))))
    monkeypatch.delenv("SANIC_HOST", raising=False)
    settings = Settings.from_env({**os.environ, "HELPLINE_BIND": "0.0.0.0"})
    assert serve.serve_command(settings, "actions", []) == 0
    assert ran == [(["run", "actions", "--actions", "actions", "--port",
                     str(settings.action_port)], "127.0.0.1")]
