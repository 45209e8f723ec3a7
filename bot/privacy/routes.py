"""The reply-route cache: what a channel needs to answer a conversation, encrypted, expiring.

A route holds the provider address (phone number, chat id, session id) and the payloads of
the last menu shown, so that a typed digit can be mapped back; on Telegram also the ids of
the chat's recent messages, so that a quick exit or "forget me" can remove them from the
person's phone (``channels.telegram``). It is keyed by the
pseudonymous conversation id; the value is a Fernet token (AES-128-CBC + HMAC-SHA256) under
the deployment's route key. Nothing else in the system knows the address.

- Idle expiry: every read or write pushes the expiry to ``idle_seconds`` from now (the
  deployment's ``retention.reply_route_idle_hours``), never earlier than it was.
- ``hold`` keeps a route at least until a given time: a person waiting for a caseworker was
  told when one would write (``bot.cases.service.hold_for``), and the reply must find them.
- ``MemoryRouteCache`` (default): a bounded LRU in the process; gone on restart.
- ``RedisRouteCache`` (``HELPLINE_REDIS_URL``): shared by Rasa replicas; expiry is Redis's own
  (a key's TTL, set by small Lua scripts that never shorten it), so Redis deletes idle
  routes itself.
- ``forget`` deletes a route at once; every cache registers it with ``bot.privacy.erasure``.
- A value that no current key can decrypt (after a key was retired) counts as no route.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional

from cryptography.fernet import InvalidToken, MultiFernet

from bot.privacy import erasure

REDIS_PREFIX = "helpline:route:"
# Redis: a route's TTL is pushed to the idle time on each use, never shortened (a held route
# keeps its longer TTL); one script each, so that no other client acts in between.
_PUT = """
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(ttl, tonumber(ARGV[2])))
"""
_GET = """
local token = redis.call('GET', KEYS[1])
if token and redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return token
"""
_HOLD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'GT')
return 1
"""


@dataclass(frozen=True)
class Route:
    """How to reach a conversation, and what its channel must remember between turns.

    ``menu``: payloads of the last buttons shown (typed digits map to them). ``language``: the
    language of the last bot turn (for the channel's own words, such as a reply to a photo).
    ``pending``: what a channel must still deliver: the rest of a long answer it had to split
    (SMS, sent on "more"), or messages pushed to a page that has not polled yet (web chat).
    ``messages``: ``(message id, send time in Unix seconds)`` of the chat's recent messages,
    both the person's and the bot's, oldest first, that the channel may still delete from the
    person's device (Telegram); other channels leave it empty.
    ``undelivered``: replies the provider did not take (5xx, 429, no answer), oldest first,
    each a JSON object the channel made (``channels.redelivery``); they go out once the
    provider takes messages again, and a row of ``bot.delayed`` says that they wait.
    """

    channel: str
    address: str
    menu: tuple[str, ...] = ()
    language: str = ""
    pending: tuple[str, ...] = ()
    messages: tuple[tuple[int, int], ...] = ()
    undelivered: tuple[str, ...] = ()

    def with_menu(self, menu: tuple[str, ...]) -> "Route":
        return replace(self, menu=tuple(menu))

    def with_pending(self, pending: tuple[str, ...]) -> "Route":
        return replace(self, pending=tuple(pending))

    def with_messages(self, new: Iterable[tuple[int, int]], since: float,
                      limit: int) -> "Route":
        """The route with ``new`` message ids added (an id already kept keeps its first time),
        those sent before ``since`` dropped, and at most the ``limit`` most recent kept."""
        kept = {message_id: sent for message_id, sent in self.messages}
        for message_id, sent in new:
            kept.setdefault(int(message_id), int(sent))
        recent = sorted((sent, message_id) for message_id, sent in kept.items() if sent >= since)
        recent = recent[len(recent) - max(0, limit):]
        return replace(self, messages=tuple((message_id, sent) for sent, message_id in recent))

    def __repr__(self) -> str:  # never show the address, what is pending nor message ids
        return (f"Route(channel={self.channel!r}, menu={len(self.menu)} options, "
                f"language={self.language!r}, pending={len(self.pending)} parts, "
                f"messages={len(self.messages)}, undelivered={len(self.undelivered)})")


class RouteCache(ABC):
    """Encrypted, idle-expiring routes keyed by conversation id."""

    def __init__(self, fernet: MultiFernet, idle_seconds: float) -> None:
        if idle_seconds <= 0:
            raise ValueError("idle_seconds must be positive")
        self._fernet = fernet
        self.idle_seconds = idle_seconds
        erasure.register(f"reply routes ({type(self).__name__} {id(self)})", self.forget)

    def seal(self, route: Route) -> bytes:
        plain = json.dumps({"c": route.channel, "a": route.address, "m": list(route.menu),
                            "l": route.language, "p": list(route.pending),
                            "t": [list(item) for item in route.messages],
                            "u": list(route.undelivered)})
        return self._fernet.encrypt(plain.encode("utf-8"))

    def open(self, token: bytes) -> Optional[Route]:
        try:
            data = json.loads(self._fernet.decrypt(token))
        except (InvalidToken, ValueError):
            return None
        return Route(data["c"], data["a"], tuple(data.get("m", ())), data.get("l", ""),
                     tuple(data.get("p", ())),
                     tuple((int(i), int(t)) for i, t in data.get("t", ())),
                     tuple(data.get("u", ())))

    @abstractmethod
    async def put(self, conversation_id: str, route: Route) -> None:
        """Stores (or replaces) the route and restarts its idle time."""

    @abstractmethod
    async def get(self, conversation_id: str) -> Optional[Route]:
        """The route, or None when there is none, it expired or cannot be decrypted."""

    @abstractmethod
    async def hold(self, conversation_id: str, until: dt.datetime) -> bool:
        """Keeps the route at least until ``until`` (a longer expiry stays); False when there
        is no route to keep."""

    @abstractmethod
    async def forget(self, conversation_id: str) -> None:
        """Deletes the route now."""

    @abstractmethod
    async def reencrypt(self) -> int:
        """Re-encrypts every stored route with the newest key; returns how many."""

    def close(self) -> None:
        erasure.unregister(f"reply routes ({type(self).__name__} {id(self)})")


class MemoryRouteCache(RouteCache):
    """Routes in this process's memory, LRU-bounded.

    Expiry runs on ``clock`` (monotonic seconds); ``wall_clock`` (Unix seconds) only turns the
    time of a ``hold`` into it. Tests give both the same clock.
    """

    def __init__(
        self,
        fernet: MultiFernet,
        idle_seconds: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        super().__init__(fernet, idle_seconds)
        self._max = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        self._items: "OrderedDict[str, tuple[float, bytes]]" = OrderedDict()
        self._lock = threading.Lock()

    async def put(self, conversation_id: str, route: Route) -> None:
        token = self.seal(route)
        with self._lock:
            now = self._clock()
            self._items[conversation_id] = (self._expiry(conversation_id, now), token)
            self._items.move_to_end(conversation_id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    async def get(self, conversation_id: str) -> Optional[Route]:
        with self._lock:
            item = self._items.get(conversation_id)
            if item is None:
                return None
            expires, token = item
            now = self._clock()
            if expires <= now:
                del self._items[conversation_id]
                return None
            self._items[conversation_id] = (max(expires, now + self.idle_seconds), token)
            self._items.move_to_end(conversation_id)
        return self.open(token)

    def _expiry(self, conversation_id: str, now: float) -> float:
        """``idle_seconds`` from ``now``, or the route's current expiry if that is later."""
        item = self._items.get(conversation_id)
        later = item[0] if item is not None and item[0] > now else now
        return max(later, now + self.idle_seconds)

    async def hold(self, conversation_id: str, until: dt.datetime) -> bool:
        with self._lock:
            item = self._items.get(conversation_id)
            now = self._clock()
            if item is None or item[0] <= now:
                return False
            held = now + (until.timestamp() - self._wall_clock())
            self._items[conversation_id] = (max(item[0], held), item[1])
            return True

    async def forget(self, conversation_id: str) -> None:
        with self._lock:
            self._items.pop(conversation_id, None)

    async def reencrypt(self) -> int:
        with self._lock:
            for key, (expires, token) in list(self._items.items()):
                try:
                    self._items[key] = (expires, self._fernet.rotate(token))
                except InvalidToken:
                    del self._items[key]
            return len(self._items)

    def __len__(self) -> int:
        return len(self._items)


def reconnecting_client(url: str):
    """An asyncio Redis client that replaces a broken connection and tries again: after a
    Redis restart every pooled connection is closed, and without this each one would fail one
    command, and so one person's message, before being replaced (issue 17 §5)."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError

    return aioredis.Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
                                   retry_on_error=[ConnectionError, TimeoutError])


class RedisRouteCache(RouteCache):
    """Routes in Redis under ``helpline:route:<conversation id>``, expired by Redis."""

    def __init__(self, fernet: MultiFernet, idle_seconds: float, url: str) -> None:
        super().__init__(fernet, idle_seconds)
        self.url = url
        self._clients: dict = {}

    def _client(self):
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:  # a client belongs to one event loop
            client = reconnecting_client(self.url)
            self._clients = {loop: client}
        return client

    def _ttl_ms(self) -> int:
        return max(1000, int(self.idle_seconds * 1000))

    async def put(self, conversation_id: str, route: Route) -> None:
        await self._client().eval(_PUT, 1, REDIS_PREFIX + conversation_id, self.seal(route),
                                  self._ttl_ms())

    async def get(self, conversation_id: str) -> Optional[Route]:
        token = await self._client().eval(_GET, 1, REDIS_PREFIX + conversation_id,
                                          self._ttl_ms())
        return None if token is None else self.open(token)

    async def hold(self, conversation_id: str, until: dt.datetime) -> bool:
        return bool(await self._client().eval(_HOLD, 1, REDIS_PREFIX + conversation_id,
                                              int(until.timestamp() * 1000)))

    async def forget(self, conversation_id: str) -> None:
        await self._client().delete(REDIS_PREFIX + conversation_id)

    async def reencrypt(self) -> int:
        client = self._client()
        count = 0
        async for key in client.scan_iter(match=REDIS_PREFIX + "*"):
            token = await client.get(key)
            if token is None:
                continue
            try:
                fresh = self._fernet.rotate(token)
            except InvalidToken:
                await client.delete(key)
                continue
            await client.set(key, fresh, keepttl=True, xx=True)
            count += 1
        return count

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients = {}
        self.close()
