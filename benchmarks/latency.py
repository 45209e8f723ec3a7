"""Per-message latency over REST: real action server + Rasa server, a scripted conversation.

Usage:
    .venv/bin/python -m benchmarks.latency [--rounds 20]

Starts both servers on free ports with the current model (train it first: `helpline train`),
sends a scripted conversation (free text in four languages, typed numbers, the screening,
an emergency, a quick exit) ``--rounds`` times from new senders, and prints p50 / p95 / max.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bot.cli import model_path
from bot.settings import Settings
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop

SCRIPT = [
    "hello", "1", "what is human trafficking", "more", "someone offered me a job abroad, is it real?",
    "menu", "4", "yes", "yes", "no", "no", "skip", "no", "yes", "no",
    "bonjour, je cherche de l'aide pour mes papiers", "menu", "السلام عليكم، أريد التحدث مع شخص",
    "hola necesito ayuda por favor, estoy en peligro ahora", "exit",
]


def post(url: str, sender: str, text: str) -> float:
    body = json.dumps({"sender": sender, "message": text}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as reply:
        reply.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    model = model_path(Settings.from_env())
    if not model.exists():
        sys.exit(f"no model for the current inputs: run `helpline train` first ({model.name})")
    logs = Path(tempfile.mkdtemp(prefix="helpline-bench-"))
    action_port, rasa_port = free_port(), free_port()
    actions = start_action_server(action_port, logs / "actions.log")
    try:
        rasa = start_rasa_server(model, rasa_port, f"http://127.0.0.1:{action_port}/webhook",
                                 logs / "rasa.log")
    except Exception:
        stop(actions)
        raise
    try:
        url = f"http://127.0.0.1:{rasa_port}/webhooks/helpline/webhook"
        post(url, "warm-up", "hello")
        samples = []
        for round_number in range(args.rounds):
            for text in SCRIPT:
                samples.append(post(url, f"bench-{round_number}", text))
        samples_ms = sorted(1000 * s for s in samples)
        p50 = statistics.median(samples_ms)
        p95 = samples_ms[int(0.95 * (len(samples_ms) - 1))]
        print(f"messages: {len(samples_ms)} ({args.rounds} conversations of {len(SCRIPT)})")
        print(f"latency ms: p50 {p50:.1f}  p95 {p95:.1f}  max {samples_ms[-1]:.1f}  "
              f"mean {statistics.mean(samples_ms):.1f}")
    finally:
        stop(rasa)
        stop(actions)


if __name__ == "__main__":
    main()
