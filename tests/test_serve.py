"""``helpline serve rasa`` (bot/serve.py), as scripts/start runs it: the API token is in no
process's command line (readable by every user of the machine), and the API still asks for it."""

from __future__ import annotations

import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.serve import command
from bot.settings import PROJECT_ROOT
from tests.utils.assistant import free_port, quiet_env, stop, wait_for


def descendants(pid: int) -> list[int]:
    """``pid`` and every process it started, still running (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.model
@pytest.mark.slow
def test_the_token_is_on_no_command_line_and_the_api_asks_for_it(model_path, tmp_path):
    token = secrets.token_urlsafe(32)
    port = free_port()
    env = quiet_env(HELPLINE_RASA_TOKEN=token, HELPLINE_RASA_PORT=str(port),
                    HELPLINE_BIND="127.0.0.1",
                    HELPLINE_SECRETS_FILE=str(tmp_path / "secrets.json"),
                    HELPLINE_DATABASE_URL=f"sqlite:///{tmp_path / 'helpline.db'}")
    with open(tmp_path / "rasa.log", "wb") as log:
        process = subprocess.Popen(command("rasa"), cwd=PROJECT_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/webhooks/helpline/", process, seconds=240)
        processes = descendants(process.pid)
        for pid in processes:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue  # ended meanwhile
            assert token.encode() not in cmdline, f"the token is in process {pid}'s command line"
        assert Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[-3:-1] == [
            b"serve", b"rasa"]
        # The API is on (the token came from the environment) and refuses anyone without it.
        assert status(f"http://127.0.0.1:{port}/status") == 401
        assert status(f"http://127.0.0.1:{port}/status?token=not-the-token") == 401
        assert status(f"http://127.0.0.1:{port}/status?token={token}") == 200
    finally:
        stop(process)
    assert token not in (tmp_path / "rasa.log").read_text(errors="replace")
