"""Per-conversation rate limits and replay memory (issue 17 §2), in memory and in Redis."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet, MultiFernet

from bot.catalog import load_catalog
from bot.deployment import cached_deployment
from bot.privacy.keys import Secrets
from bot.privacy.routes import MemoryRouteCache
from bot.settings import Settings
from channels.gateway import Gateway, leaves
from channels.limits import MemoryLimits, RedisLimits, keyed

ADDRESS = "+9995550177"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_gateway(limits, per_minute: int = 20) -> Gateway:
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=600)
    return Gateway("sms", Secrets(b"r" * 32, (key,)), routes, limits=limits,
                   per_minute=per_minute)


async def test_memory_counters_count_per_window_and_forget_after_it():
    clock = Clock()
    limits = MemoryLimits(clock=clock)
    assert [await limits.hit("a", 60) for _ in range(3)] == [1, 2, 3]
    assert await limits.hit("b", 60) == 1
    clock.now += 59
    assert await limits.hit("a", 60) == 4
    clock.now += 1.5  # the window of "a" began at its first hit
    assert await limits.hit("a", 60) == 1
    assert await limits.first_time("sid", 86400) and not await limits.first_time("sid", 86400)
    clock.now += 86401
    assert await limits.first_time("sid", 86400)


async def test_memory_counters_are_bounded_and_a_flood_evicts_the_oldest_only():
    """A flood of new keys costs memory up to the bound, no more; what it evicts is the
    least recently used (measured: 10,000 flood keys against a bound of 1,000)."""
    limits = MemoryLimits(max_keys=1000)
    await limits.hit("person", 60)
    for number in range(10_000):
        await limits.hit(f"flood{number}", 60)
        if number % 500 == 0:
            await limits.hit("person", 60)  # an active conversation stays
    assert len(limits) == 1000
    assert await limits.hit("person", 60) == 22


async def test_redis_counters_expire_in_redis(redis_url):
    import redis

    limits = RedisLimits(redis_url)
    try:
        assert [await limits.hit("rate:c1", 60) for _ in range(3)] == [1, 2, 3]
        assert await limits.first_time("seen:x", 86400)
        assert not await limits.first_time("seen:x", 86400)
    finally:
        await limits.aclose()
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl("helpline:limit:rate:c1") <= 60  # the first hit started the window
    assert 86000 < client.ttl("helpline:limit:seen:x") <= 86400
    client.close()


def test_keyed_hashes_hide_the_value_and_depend_on_the_key():
    sid = "SM" + "7" * 32
    assert keyed(b"a" * 32, "sid", sid) == keyed(b"a" * 32, "sid", sid)
    assert keyed(b"a" * 32, "sid", sid) != keyed(b"b" * 32, "sid", sid)
    assert "7777" not in keyed(b"a" * 32, "sid", sid)


@pytest.mark.parametrize("language", ["en", "fr", "ar", "es"])
async def test_over_the_limit_one_polite_answer_then_silence_until_the_minute_passes(language):
    clock = Clock()
    gateway = make_gateway(MemoryLimits(clock=clock), per_minute=20)
    first = await gateway.admit(ADDRESS, "hello")
    await gateway.remember_turn(first, [{"text": "hi", "metadata": {"language": language}}])
    admitted = [await gateway.admit(ADDRESS, f"message {n}") for n in range(19)]
    assert not any(a.limited for a in admitted)
    over = await gateway.admit(ADDRESS, "one more")
    assert over.limited == "first"
    [message] = gateway.limited_messages(over)
    deployment = cached_deployment(Settings.from_env().deployment_file)
    assert message["text"].startswith(load_catalog().channel_text("slow_down", language))
    assert deployment.render_contacts(language) in message["text"]
    assert message["metadata"] == {"language": language}
    again = await gateway.admit(ADDRESS, "and more")
    assert again.limited == "again" and gateway.limited_messages(again) == []
    other = await gateway.admit("+9995550178", "hello")  # another conversation goes on
    assert not other.limited
    # leaving, erasing and ending subscriptions are always answered
    for text in ("EXIT", "forget me", "/quick_exit", "/forget_me", "/unsubscribe"):
        assert not (await gateway.admit(ADDRESS, text)).limited, text
    clock.now += 61
    assert not (await gateway.admit(ADDRESS, "back")).limited


def test_what_leaves_is_recognised_exactly_not_fuzzily():
    assert leaves("EXIT") and leaves("/quick_exit") and leaves('/forget_me{"x":1}')
    assert not leaves("exit the job agency") and not leaves("/menu") and not leaves("hello")


@pytest.mark.parametrize("language", ["en", "fr", "ar", "es"])
def test_the_erase_word_each_consent_names_is_always_answered(language):
    """The words utter_screening_about gives for erasing pass any rate limit."""

    from bot.keywords import safety_form
    from channels.gateway import ERASE_WORDS

    text = load_catalog().texts[language]["utter_screening_about"]
    named = [w for w in ERASE_WORDS if w in safety_form(text)]
    assert named, f"{language}: the consent names none of {sorted(ERASE_WORDS)}"
    assert all(leaves(word.upper()) for word in named)
