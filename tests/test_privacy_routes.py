"""The reply-route cache: encrypted, idle-expiring, erasable; in memory and in Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
from cryptography.fernet import Fernet, MultiFernet

from bot.privacy import erasure
from bot.privacy.routes import REDIS_PREFIX, MemoryRouteCache, RedisRouteCache, Route

ADDRESS = "+999 555 0199"
ROUTE = Route("sms", ADDRESS, ("/affirm", "/deny"))


def fernet(*keys: bytes) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


async def test_memory_routes_round_trip_and_are_encrypted():
    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=60)
    await cache.put("c1", ROUTE)
    assert await cache.get("c1") == ROUTE
    stored = cache._items["c1"][1]
    assert b"555" not in stored and b"affirm" not in stored
    assert ADDRESS not in repr(ROUTE)
    await cache.forget("c1")
    assert await cache.get("c1") is None
    cache.close()


async def test_memory_routes_expire_when_idle_and_reading_keeps_them_alive():
    now = [0.0]
    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=10, clock=lambda: now[0])
    await cache.put("c1", ROUTE)
    now[0] = 8
    assert await cache.get("c1") == ROUTE  # read at 8: alive until 18
    now[0] = 17
    assert await cache.get("c1") == ROUTE
    now[0] = 28
    assert await cache.get("c1") is None
    assert len(cache) == 0
    cache.close()


async def test_memory_routes_are_bounded():
    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=60, max_entries=2)
    for name in ("a", "b", "c"):
        await cache.put(name, ROUTE)
    assert await cache.get("a") is None and len(cache) == 2
    cache.close()


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=0)
    with pytest.raises(ValueError):
        MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=5, max_entries=0)


async def test_a_route_under_a_retired_key_is_no_route():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    writer = MemoryRouteCache(fernet(old), idle_seconds=60)
    await writer.put("c1", ROUTE)
    token = writer._items["c1"][1]
    reader = MemoryRouteCache(fernet(new), idle_seconds=60)
    reader._items["c1"] = (float("inf"), token)
    assert await reader.get("c1") is None
    writer.close()
    reader.close()


async def test_erasure_reaches_every_cache():
    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=60)
    await cache.put("c-erase", ROUTE)
    assert await erasure.erase("c-erase") == []
    assert await cache.get("c-erase") is None
    cache.close()
    assert not any(str(id(cache)) in name for name in erasure.registered())


async def test_one_failing_eraser_does_not_stop_the_others():
    async def broken(_: str) -> None:
        raise RuntimeError("down")

    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=60)
    erasure.register("broken", broken)
    try:
        await cache.put("c2", ROUTE)
        assert await erasure.erase("c2") == ["broken"]
        assert await cache.get("c2") is None
    finally:
        erasure.unregister("broken")
        cache.close()


async def test_an_eraser_registered_first_runs_before_the_routes_are_forgotten():
    """The Telegram channel reads the chat's message ids from the route when the conversation
    is erased: its eraser must see the route before the cache's own eraser deletes it."""
    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=60)
    seen = []

    async def reader(conversation_id: str) -> None:
        seen.append(await cache.get(conversation_id))

    erasure.register("reader (test)", reader, on_expiry=False, first=True)
    try:
        route = Route("telegram", "12345678").with_messages([(7, 1000), (8, 1001)], 0, 10)
        await cache.put("c-first", route)
        assert await erasure.erase("c-first") == []
        assert seen == [route] and await cache.get("c-first") is None
        await cache.put("c-idle", route)
        assert await erasure.erase("c-idle", expiry=True) == []
        assert len(seen) == 1 and await cache.get("c-idle") is None  # idleness: not called
    finally:
        erasure.unregister("reader (test)")
        cache.close()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_routes_message_ids_are_kept_encrypted(backend, request):
    key = Fernet.generate_key()
    if backend == "redis":
        cache = RedisRouteCache(fernet(key), idle_seconds=60, url=request.getfixturevalue("redis_url"))
    else:
        cache = MemoryRouteCache(fernet(key), idle_seconds=60)
    route = Route("telegram", "12345678").with_messages([(987654, 1_800_000_000)], 0, 10)
    try:
        await cache.put("c-ids", route)
        assert (await cache.get("c-ids")).messages == ((987654, 1_800_000_000),)
        assert b"987654" not in cache.seal(route) and "987654" not in repr(route)
    finally:
        if backend == "redis":
            await cache.aclose()
        else:
            cache.close()


def test_a_route_keeps_recent_message_ids_once_and_at_most_the_limit():
    route = Route("telegram", "1").with_messages([(5, 100), (3, 90), (5, 200), (7, 50)], 60, 10)
    assert route.messages == ((3, 90), (5, 100))  # 7 too old; 5 keeps its first time
    assert route.with_messages([(9, 300), (10, 300)], 60, 2).messages == ((9, 300), (10, 300))
    assert route.with_messages([(9, 300)], 60, 0).messages == ()
    old = {"c": "sms", "a": "+999", "m": [], "l": "", "p": []}  # a route sealed before the ids
    cache = MemoryRouteCache(fernet(Fernet.generate_key()), idle_seconds=60)
    token = cache._fernet.encrypt(json.dumps(old).encode())
    assert cache.open(token) == Route("sms", "+999")
    cache.close()


async def test_redis_routes_are_encrypted_and_expire_natively(redis_url):
    key = Fernet.generate_key()
    cache = RedisRouteCache(fernet(key), idle_seconds=120, url=redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        await cache.put("c1", ROUTE)
        assert await cache.get("c1") == ROUTE
        raw = client.get(REDIS_PREFIX + "c1")
        assert b"555" not in raw and b"sms" not in raw
        assert 0 < client.ttl(REDIS_PREFIX + "c1") <= 120
        client.expire(REDIS_PREFIX + "c1", 5)
        await cache.get("c1")  # a read restarts the idle time
        assert client.ttl(REDIS_PREFIX + "c1") > 100
        await erasure.erase("c1")
        assert client.exists(REDIS_PREFIX + "c1") == 0
        short = RedisRouteCache(fernet(key), idle_seconds=1, url=redis_url)
        await short.put("c3", ROUTE)
        await asyncio.sleep(2.2)
        assert await short.get("c3") is None
        await short.aclose()
    finally:
        await cache.aclose()
        client.close()


async def test_redis_routes_are_reencrypted_with_the_newest_key(redis_url):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    before = RedisRouteCache(fernet(old), idle_seconds=300, url=redis_url)
    await before.put("c1", ROUTE)
    await before.put("c2", Route("telegram", "12345678"))
    rotated = RedisRouteCache(fernet(new, old), idle_seconds=300, url=redis_url)
    assert await rotated.reencrypt() == 2
    only_new = RedisRouteCache(fernet(new), idle_seconds=300, url=redis_url)
    assert await only_new.get("c1") == ROUTE
    assert (await only_new.get("c2")).address == "12345678"
    assert await before.get("c1") is None  # the old key alone no longer reads it
    for cache in (before, rotated, only_new):
        await cache.aclose()
