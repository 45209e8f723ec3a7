"""Rate limits for the campaign dispatcher: a token bucket per provider and one per Telegram chat.

``TokenBucket(rate, burst)`` gives out ``rate`` tokens a second on average and at most
``burst`` at once (the bucket starts full); ``await acquire()`` waits for one. It is kept as
the generic cell rate algorithm, the token bucket's exact equivalent: one number, the
"theoretical arrival time" of the next token. ``acquire`` reserves its slot at once and then
sleeps until it, so waiters are served in the order they came and no lock is needed.
``rate=None`` (or ``inf``) is no limit. ``hold(seconds)`` gives out nothing for a while (the
provider answered 429 with Retry-After: every other send would get the same answer); a
waiter whose slot falls inside the hold waits for its end and queues again.

``KeyedLimiter(rate, burst)`` is such a bucket per key (a Telegram chat: at most one message
a second each) kept as one float per key; keys whose bucket is full again are forgotten, so
100,000 chats do not stay in memory.

The clock (``time.monotonic``) and the sleep (``asyncio.sleep``) can be injected: the tests
drive the buckets with a clock of their own and no real waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Awaitable, Callable, Hashable, Optional

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
EPSILON = 1e-9  # seconds: float sums (60.1 + 0.4 - 0.4) must not cost a token


def default_burst(rate: Optional[float]) -> float:
    """A tenth of a second's worth of tokens, at least one: smooth at 30/s (burst 3), without
    a timer per message at 1,000/s (burst 100)."""
    if rate is None:
        return 1.0
    return max(1.0, rate / 10)


class TokenBucket:
    """``rate`` tokens a second, ``burst`` at most at once; the bucket starts full."""

    def __init__(self, rate: Optional[float], burst: Optional[float] = None,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        if rate is not None and not rate > 0:
            raise ValueError("rate must be above 0 (None: no limit)")
        self.rate = None if rate is None or math.isinf(rate) else float(rate)
        burst = default_burst(self.rate) if burst is None else burst
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._interval = 0.0 if self.rate is None else 1.0 / self.rate
        self._tolerance = (self.burst - 1) * self._interval
        self._next = clock()  # the theoretical arrival time of the next token
        self._held_until = float("-inf")

    @property
    def unlimited(self) -> bool:
        return self.rate is None

    def _reserve(self, now: float) -> float:
        """Takes the next slot; returns how long to wait for it (0: now)."""
        start = max(self._next, now, self._held_until)
        self._next = start + self._interval
        wait = max(start - self._tolerance - now, self._held_until - now)
        return wait if wait > EPSILON else 0.0

    def try_acquire(self) -> bool:
        """Takes a token if one is there now (no waiting)."""
        now = self._clock()
        if now < self._held_until or max(self._next, now) - self._tolerance > now + EPSILON:
            return False
        self._reserve(now)
        return True

    async def acquire(self) -> None:
        """Waits for a token and takes it; first come, first served."""
        while True:
            wait = self._reserve(self._clock())
            if wait <= 0:
                return
            await self._sleep(wait)
            if self._clock() >= self._held_until:
                return

    def wait_time(self) -> float:
        """Seconds until a token will be there (0: now), without taking it."""
        now = self._clock()
        wait = max(max(self._next, now) - self._tolerance - now, self._held_until - now)
        return wait if wait > EPSILON else 0.0

    def hold(self, seconds: float) -> None:
        """Gives out no token for ``seconds`` from now, then starts again without a burst."""
        if seconds > 0:
            until = self._clock() + seconds
            self._held_until = max(self._held_until, until)
            self._next = max(self._next, until + self._tolerance)


class KeyedLimiter:
    """A ``TokenBucket`` per key (``rate`` per second and ``burst`` each), one float per key."""

    def __init__(self, rate: float, burst: float = 1, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep, sweep_every: float = 10.0) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError("rate must be above 0 and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[Hashable, float] = {}
        self._sweep_every = sweep_every
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._next)

    def wait_time(self, key: Hashable) -> float:
        now = self._clock()
        wait = max(self._next.get(key, now), now) - self._tolerance - now
        return wait if wait > EPSILON else 0.0

    async def acquire(self, key: Hashable) -> None:
        now = self._clock()
        self._sweep(now)
        start = max(self._next.get(key, now), now)
        self._next[key] = start + self._interval
        wait = start - self._tolerance - now
        if wait > EPSILON:
            await self._sleep(wait)

    def _sweep(self, now: float) -> None:
        """Forgets keys whose bucket is full again (the same state as a key never seen)."""
        if now - self._swept < self._sweep_every:
            return
        self._swept = now
        for key in [k for k, t in self._next.items() if t <= now]:  # as good as new
            del self._next[key]
