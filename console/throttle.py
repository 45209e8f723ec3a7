"""Growing delays on failed sign-ins per client address: in memory, or in Redis for replicas.

The account's own lock-out (``console.users``) stops guessing one name; this stops one client
guessing many names, and keeps a stranger from holding a known name locked for ever: every
``CLIENT_MAX_FAILURES`` refused sign-ins from one address make that address wait
``CLIENT_FIRST_MINUTES``, twice as long each time after, at most ``CLIENT_MAX_MINUTES``: longer
than the account's longest lock-out (``LOCK_MAX_MINUTES``), so a stranger from one address
can lock the name at most a quarter of the time, and the person it belongs to signs in
between.

Privacy (ARCHITECTURE.md, promise 1): the address is never stored, never logged, never kept
in clear even in memory. ``ClientThrottle`` (one console process) turns it at once into an
HMAC-SHA256 under a random key made when the console starts and never written anywhere; the
table forgets a client ``FORGET_HOURS`` after its last failure, holds at most
``max_clients`` of them (the oldest go first), and a restart forgets them all.
``RedisClientThrottle`` (``HELPLINE_REDIS_URL`` set: several console processes, or one that
restarts) keeps the count and the wait under an HMAC of the address under the deployment's
pseudonym key, so that every console process of the deployment finds the same client; Redis
deletes the entry ``FORGET_HOURS`` after the last failure. A success does not wipe a client's
count (a caseworker could otherwise reset it between guesses at a colleague's name).

Behind the reverse proxy every request comes from 127.0.0.1: the proxy passes the client's
address in ``X-Real-IP``, which is believed only from a loopback peer (``client_address``).
Everything here runs on the event loop (no lock needed; Redis's HINCRBY counts atomically
across processes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from console.users import LOCK_MAX_MINUTES, MAX_FAILURES, growing_delay, utcnow

logger = logging.getLogger("console.auth")

CLIENT_MAX_FAILURES = 2 * MAX_FAILURES  # a shared office address may try a few names
CLIENT_FIRST_MINUTES = 1
CLIENT_MAX_MINUTES = 4 * LOCK_MAX_MINUTES
FORGET_HOURS = 24
MAX_CLIENTS = 10_000
REAL_IP_HEADER = "X-Real-IP"


def client_address(peer: Optional[str], headers: Mapping[str, str]) -> str:
    """The client's address: the proxy's ``X-Real-IP`` when the request comes from a loopback
    address (the reverse proxy on the same machine), else the peer itself."""
    try:
        loopback = peer is not None and ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    forwarded = headers.get(REAL_IP_HEADER, "").strip() if loopback else ""
    return forwarded[:64] if forwarded else (peer or "")


@dataclass
class _Client:
    failures: int
    last_failure: dt.datetime
    waits_until: Optional[dt.datetime] = None


class ClientThrottle:
    """Refused sign-ins per client (keyed hash of the address) and the wait they earned."""

    def __init__(self, clock: Callable[[], dt.datetime] = utcnow,
                 max_clients: int = MAX_CLIENTS) -> None:
        self._clock = clock
        self._key = secrets.token_bytes(32)  # never stored: a restart forgets every client
        self._clients: "OrderedDict[bytes, _Client]" = OrderedDict()
        self.max_clients = max_clients

    def _id(self, address: str) -> bytes:
        return hmac.new(self._key, address.encode("utf-8", "replace"), hashlib.sha256).digest()

    def _get(self, address: str) -> tuple[bytes, Optional[_Client]]:
        key = self._id(address)
        client = self._clients.get(key)
        if client is not None and self._clock() - client.last_failure > dt.timedelta(
                hours=FORGET_HOURS):
            del self._clients[key]
            client = None
        return key, client

    async def wait_seconds(self, address: str) -> int:
        """How long this client must still wait before its next sign-in (0: it may try)."""
        _, client = self._get(address)
        if client is None or client.waits_until is None:
            return 0
        return max(0, int((client.waits_until - self._clock()).total_seconds() + 0.999))

    async def failed(self, address: str) -> None:
        """Counts a refused sign-in from this client; every ``CLIENT_MAX_FAILURES``-th makes
        it wait, longer each time."""
        now = self._clock()
        key, client = self._get(address)
        if client is None:
            client = self._clients[key] = _Client(0, now)
        client.failures += 1
        client.last_failure = now
        self._clients.move_to_end(key)
        minutes = _wait_minutes(client.failures)
        if minutes:
            client.waits_until = now + dt.timedelta(minutes=minutes)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)

    def __len__(self) -> int:
        return len(self._clients)


def _wait_minutes(failures: int) -> int:
    """The wait ``failures`` refused sign-ins earn (0 but at every CLIENT_MAX_FAILURES-th)."""
    minutes = growing_delay(failures, CLIENT_MAX_FAILURES, CLIENT_FIRST_MINUTES,
                            CLIENT_MAX_MINUTES)
    if minutes:
        logger.warning("a client waits %d minute(s) after %d refused sign-ins (its address "
                       "is not kept)", minutes, failures)
    return minutes


REDIS_PREFIX = "helpline:sign-in-client:"
# one refused sign-in: the count goes up, a wait is set when it earns one, and the entry is
# forgotten FORGET_HOURS after the last failure; one script, so no other process acts between
_FAILED = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return failures
"""


class RedisClientThrottle:
    """``ClientThrottle`` shared by the console processes of a deployment, through Redis."""

    def __init__(self, url: str, key: bytes, clock: Callable[[], dt.datetime] = utcnow) -> None:
        """``key``: the deployment's pseudonym key (every process must find the same client)."""
        self.url = url
        self._key = key
        self._clock = clock
        self._clients: dict = {}

    def _client(self):
        import asyncio

        from bot.privacy.routes import reconnecting_client

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:  # a client belongs to one event loop (one that survives a restart)
            client = reconnecting_client(self.url)
            self._clients = {loop: client}
        return client

    def _id(self, address: str) -> str:
        digest = hmac.new(self._key, b"console-client\x00" + address.encode("utf-8", "replace"),
                          hashlib.sha256)
        return REDIS_PREFIX + digest.hexdigest()[:40]

    async def wait_seconds(self, address: str) -> int:
        until = await self._client().hget(self._id(address), "waits_until")
        if until is None:
            return 0
        left = float(until) - self._clock().timestamp()
        return max(0, int(left + 0.999))

    async def failed(self, address: str) -> None:
        key = self._id(address)
        failures = int(await self._client().eval(_FAILED, 1, key, FORGET_HOURS * 3600))
        minutes = _wait_minutes(failures)
        if minutes:
            until = self._clock() + dt.timedelta(minutes=minutes)
            await self._client().hset(key, "waits_until", f"{until.timestamp():.3f}")

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients = {}
