"""Counters with expiry for the channels: replayed webhooks and per-conversation rates.

Two questions, one store: ``first_time(key, seconds)`` (was this key seen in the last
``seconds``? It is remembered from now on) and ``hit(key, seconds)`` (how many times was this
key counted in the current window of ``seconds``, this time included). Keys are never
addresses or provider ids in clear: the callers pass a pseudonymous conversation id or a keyed
hash (``keyed``).

- ``MemoryLimits`` (default): in the process, bounded (the oldest entries go first when full,
  so a flood of new keys costs memory up to the bound, not more);
- ``RedisLimits`` (``HELPLINE_REDIS_URL``): ``SET NX EX`` and ``INCR`` + ``EXPIRE`` (one
  script), shared by Rasa replicas and expired by Redis itself.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Callable

from bot.privacy.routes import RedisRouteCache

REDIS_PREFIX = "helpline:limit:"
# Counts one; the window starts at the first count (its expiry is set once).
_HIT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return count
"""
MAX_MEMORY_KEYS = 200_000


def keyed(key: bytes, purpose: str, value: str) -> str:
    """A keyed hash of ``value`` for ``purpose``: the same value gives the same key under the
    same secret, and the key reveals nothing of the value."""
    digest = hmac.new(key, f"{purpose}\x00{value}".encode("utf-8"), hashlib.sha256)
    return f"{purpose}:{digest.hexdigest()[:40]}"


class Limits(ABC):
    @abstractmethod
    async def first_time(self, key: str, seconds: int) -> bool:
        """True the first time ``key`` is seen within ``seconds``; remembers it."""

    @abstractmethod
    async def hit(self, key: str, seconds: int) -> int:
        """Counts one for ``key`` in the current window of ``seconds``; the count so far."""


class MemoryLimits(Limits):
    def __init__(self, max_keys: int = MAX_MEMORY_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._items: "OrderedDict[str, tuple[float, int]]" = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> tuple[float, int] | None:
        item = self._items.get(key)
        if item is not None and item[0] <= now:
            del self._items[key]
            return None
        return item

    def _store(self, key: str, item: tuple[float, int]) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self._max_keys:
            self._items.popitem(last=False)

    async def first_time(self, key: str, seconds: int) -> bool:
        now = self._clock()
        with self._lock:
            if self._current(key, now) is not None:
                return False
            self._store(key, (now + seconds, 1))
            return True

    async def hit(self, key: str, seconds: int) -> int:
        now = self._clock()
        with self._lock:
            item = self._current(key, now)
            expires, count = item if item is not None else (now + seconds, 0)
            self._store(key, (expires, count + 1))
            return count + 1

    def __len__(self) -> int:
        return len(self._items)


class RedisLimits(Limits):
    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict = {}

    _client = RedisRouteCache._client  # one client per event loop, as the route cache
    async def first_time(self, key: str, seconds: int) -> bool:
        return bool(await self._client().set(REDIS_PREFIX + key, b"1", nx=True, ex=seconds))

    async def hit(self, key: str, seconds: int) -> int:
        # One script, not a MULTI pipeline: redis-py retries a command on a connection that a
        # Redis restart closed (``reconnecting_client``), never a pipeline.
        return int(await self._client().eval(_HIT, 1, REDIS_PREFIX + key, seconds))

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients = {}
