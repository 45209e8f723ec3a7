"""What the fake Twilio and Telegram APIs share: idempotency keys and delivery book-keeping.

``Deliveries`` is mixed into both fakes (which hold ``_lock``, a ``threading.Lock``, and
``delay_seconds``): ``_answers`` maps an Idempotency-Key to the first answer given with it (a
repeat gets that answer and nothing is delivered), ``deliveries`` counts messages per
recipient, ``repeats`` and ``requests_seen`` count requests, ``in_flight`` the requests taken
and not yet answered while ``delay_seconds`` holds them, and ``first_delivery_at`` /
``last_delivery_at`` (``time.monotonic()``) give the benchmarks their rates.

``storm(seconds, behaviours)``: for ``seconds`` from now, every request that no script
answers gets the next of ``behaviours`` in turn (5xx statuses, 429, ``"timeout"``), as a
provider does during an outage; ``storm_answers`` counts them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from typing import Iterable, Optional


class Deliveries:
    def _init_deliveries(self) -> None:
        self._answers: dict = {}  # Idempotency-Key -> (status, body)
        self.deliveries: Counter = Counter()  # recipient (as text) -> messages delivered
        self.repeats = 0  # requests answered from an Idempotency-Key seen before
        self.requests_seen = 0
        self.in_flight = 0  # requests taken and not yet answered (delay_seconds)
        self.first_delivery_at: Optional[float] = None
        self.last_delivery_at: Optional[float] = None
        self._storm_until = 0.0
        self._storm = itertools.cycle(())
        self.storm_answers = 0

    def storm(self, seconds: float, behaviours: Iterable = (503, 429, 500, "timeout")) -> None:
        """Fails every request for ``seconds`` from now with ``behaviours`` in turn."""
        with self._lock:
            self._storm = itertools.cycle(tuple(behaviours))
            self._storm_until = time.monotonic() + seconds

    def storming(self) -> bool:
        return time.monotonic() < self._storm_until

    def _storm_behaviour(self):
        """The storm's next behaviour while it lasts, else None (call under ``_lock``)."""
        if time.monotonic() >= self._storm_until:
            return None
        self.storm_answers += 1
        return next(self._storm)

    def delivered_to(self, recipient) -> int:
        with self._lock:
            return self.deliveries[str(recipient)]

    def totals(self) -> tuple[int, int, int]:
        """(messages delivered, repeats answered from a key, requests seen)."""
        with self._lock:
            return sum(self.deliveries.values()), self.repeats, self.requests_seen

    def _settle(self, key: Optional[str], status: int, body: dict, remember: bool,
                recipient: str, delivered: bool, at: float) -> None:
        """Records an answer: kept for its key when ``remember``, a delivery when
        ``delivered``."""
        with self._lock:
            if key and remember:
                self._answers[key] = (status, body)
            if delivered:
                self.deliveries[str(recipient)] += 1
                self.last_delivery_at = at
                self.first_delivery_at = self.first_delivery_at or at

    async def _hold(self) -> None:
        """Waits ``delay_seconds`` before the answer, counted in ``in_flight``."""
        if not self.delay_seconds:
            return
        with self._lock:
            self.in_flight += 1
        try:
            await asyncio.sleep(self.delay_seconds)
        finally:
            with self._lock:
                self.in_flight -= 1
