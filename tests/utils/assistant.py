"""Drive the trained assistant in-process (Rasa Agent) with a real action server process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from bot.settings import PROJECT_ROOT

FIRST_CONTACT = "utter_first_contact"  # the first answer of a new conversation


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def quiet_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false",
               SQLALCHEMY_SILENCE_UBER_WARNING="1", PYTHONWARNINGS="ignore")
    env.update(extra)  # the caller's settings win (the canary test turns warnings on)
    return env


def start_action_server(port: int, log: Path, extra_args: tuple[str, ...] = (),
                        **env: str) -> subprocess.Popen:
    """Starts ``rasa run actions`` on ``port``; returns once it answers /health."""
    handle = open(log, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "rasa", "run", "actions", "--actions", "actions", "--port", str(port),
         *extra_args],
        cwd=PROJECT_ROOT, env=quiet_env(SANIC_HOST="127.0.0.1", **env), stdout=handle,
        stderr=subprocess.STDOUT,
    )
    wait_for(f"http://127.0.0.1:{port}/health", process)
    return process


def start_rasa_server(model: Path, port: int, action_url: str, log: Path,
                      extra_args: tuple[str, ...] = (), credentials: str = "credentials.yml",
                      **env: str) -> subprocess.Popen:
    """Starts ``rasa run`` with the project's channels; returns once the channel answers.

    Its secrets file and SQLite database are in the log's folder unless ``env`` says otherwise;
    ``credentials``: the channels' file (the project's own by default; it must keep the
    ``helpline`` REST channel, which this waits for).
    """
    settings = {"HELPLINE_SECRETS_FILE": str(log.parent / "secrets.json"),
                "HELPLINE_DATABASE_URL": f"sqlite:///{log.parent / 'helpline.db'}",
                "HELPLINE_ACTION_URL": action_url}
    settings.update(env)
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "rasa", "run", "--model", str(model),
             "--interface", "127.0.0.1", "--port", str(port),
             "--credentials", str(credentials), "--endpoints", "endpoints.yml", *extra_args],
            cwd=PROJECT_ROOT, env=quiet_env(**settings),
            stdout=handle, stderr=subprocess.STDOUT,
        )
    wait_for(f"http://127.0.0.1:{port}/webhooks/helpline/", process, seconds=240)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Turn:
    """What one user message produced."""

    intent: Optional[str]
    responses: List[Optional[str]]  # response names, in order
    texts: List[str]
    slots: Dict[str, Any]
    active_loop: Optional[str]
    events: List[Any] = field(default_factory=list)
    buttons: List[List[str]] = field(default_factory=list)  # each message's button payloads


class Assistant:
    """The trained model in-process, its actions in a real action server."""

    def __init__(self, model_path: Path, action_url: str, **env: str) -> None:
        """``env``: settings for the in-process tracker store (e.g. HELPLINE_DATABASE_URL,
        whose services directory decides which places a conversation may keep)."""
        import logging

        from rasa.core.agent import Agent
        from rasa.utils.common import configure_logging_and_warnings
        from rasa.utils.endpoints import EndpointConfig
        from rasa.utils.log_utils import configure_structlog

        from rasa.shared.core.domain import Domain

        from bot.settings import Settings
        from bot.tracker_store import PrivateTrackerStore

        configure_logging_and_warnings(logging.WARNING)
        configure_structlog(logging.WARNING)

        self.loop = asyncio.new_event_loop()
        class RecordingStore(PrivateTrackerStore):
            """Keeps the tracker as the processor had it (before redaction) for the test."""

            def __init__(self, domain: Domain) -> None:
                super().__init__(domain, backend="memory",
                                 settings=Settings.from_env({**os.environ, **env}))
                self.seen: Dict[str, Any] = {}

            async def save(self, tracker: Any) -> None:
                self.seen[tracker.sender_id] = tracker
                await super().save(tracker)

        self.store = RecordingStore(Domain.load(str(PROJECT_ROOT / "bot" / "domain")))
        self.agent = Agent.load(str(model_path), action_endpoint=EndpointConfig(action_url),
                                tracker_store=self.store)

    def close(self) -> None:
        self.loop.close()

    def stored_events(self, sender: str) -> List[Dict[str, Any]]:
        """Every event the tracker store holds for ``sender``, as written."""
        tracker = self.loop.run_until_complete(self.store.retrieve_full_tracker(sender))
        return [e.as_dict() for e in (tracker.events if tracker else [])]

    def parse(self, text: str) -> Dict[str, Any]:
        return self.loop.run_until_complete(self.agent.parse_message(text))

    def open(self, sender: str, text: str, channel: Optional[str] = None) -> Turn:
        """Starts ``sender``'s conversation with ``text``: asserts that the first answer is
        "is it safe to write now?" (actions/first_contact.py), answers yes, and returns that
        turn, in which ``text`` is answered as if just sent."""
        first = self.say(sender, text, channel)
        assert first.responses == [FIRST_CONTACT], (text, first.intent, first.responses)
        return self.say(sender, "/affirm", channel)

    def say(self, sender: str, text: str, channel: Optional[str] = None) -> Turn:
        """Sends ``text`` as ``sender`` (from input channel ``channel``: its words are used)
        and returns the bot's turn."""
        return self.loop.run_until_complete(self._say(sender, text, channel))

    async def _say(self, sender: str, text: str, channel: Optional[str] = None) -> Turn:
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
        from rasa.shared.core.events import BotUttered, UserUttered

        await self.agent.handle_message(
            UserMessage(text, CollectingOutputChannel(), sender, input_channel=channel))
        tracker = self.store.seen[sender]  # this turn as processed, before any erasing
        events = list(tracker.events)
        # The store keeps the latest sessions only; this turn starts at the last user message.
        start = max(i for i, e in enumerate(events) if isinstance(e, UserUttered))
        new = events[start:]
        user = new[0]
        bots = [e for e in new if isinstance(e, BotUttered)]
        return Turn(
            intent=(user.intent or {}).get("name") if user else None,
            responses=[(b.metadata or {}).get("utter_action") for b in bots],
            texts=[b.text or "" for b in bots],
            buttons=[[button.get("payload") for button in (b.data or {}).get("buttons") or []]
                     for b in bots],
            slots=dict(tracker.current_slot_values()),
            active_loop=tracker.active_loop_name,
            events=new,
        )
