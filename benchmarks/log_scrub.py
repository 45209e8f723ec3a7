"""Cost of the log scrubber: remembering a message's words, and scrubbing a log line.

    .venv/bin/python -m benchmarks.log_scrub [--remembered 100000]

Prints microseconds per ``remember_sensitive`` call (one 12-word message) and per ``scrub`` of
a typical Rasa DEBUG line, with the given number of words already remembered.
"""

from __future__ import annotations

import argparse
import time

from bot.privacy.logs import forget_sensitive, remember_sensitive, scrub

LINE = ('{"current_states": "[state 1] user intent: greet | previous action name: action_listen", '
        '"event": "rule_policy.actions.find", "level": "debug", "conversation": '
        '"c0123456789abcdef0123456789abcdef", "confidence": 0.9731}')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--remembered", type=int, default=100_000)
    args = parser.parse_args()
    forget_sensitive()
    remember_sensitive(*[f"filler{i}" for i in range(args.remembered)])
    rounds = 2000
    start = time.perf_counter()
    for i in range(rounds):
        remember_sensitive(f"my name is person{i} and my number is +999 555 {i:04d}, please help")
    remember_us = (time.perf_counter() - start) / rounds * 1e6
    start = time.perf_counter()
    for _ in range(rounds * 5):
        scrub(LINE)
    scrub_us = (time.perf_counter() - start) / (rounds * 5) * 1e6
    print(f"remembered words: {args.remembered + rounds * 6:,}")
    print(f"remember one message: {remember_us:.1f} us; scrub one DEBUG line: {scrub_us:.1f} us")


if __name__ == "__main__":
    main()
