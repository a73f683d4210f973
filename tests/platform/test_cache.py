"""The cache on its own, in process memory (embedded default) and in a real Redis (production):
hits, namespace invalidation, stampede protection, personal results, and Redis outages."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import cashews
import cashews.serialize
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import text
from structlog.testing import capture_logs

from skilltree.platform.broadcast import LocalBroadcaster, RedisBroadcaster
from skilltree.platform.cache import CHANNEL, Cache, Computed, Key, LocalCopies, stale_on_commit
from skilltree.platform.cache_storage import RememberedTokens
from skilltree.platform.config import CacheSettings, RedisSettings
from skilltree.platform.db import Database
from tests.support.redis import REDIS_URL, isolated_prefix
from tests.support.tcp_proxy import tcp_proxy

ERRORS = "skilltree_cache_errors_total"
TREE = Key("roadmap:web:tree", ("roadmap:web",))
TTL = 60


class Source:
    """Stands for the database: counts how often it is asked, answers slowly if told to."""

    def __init__(self, value: bytes = b"v1", *, delay: float = 0.0, shareable: bool = True):
        self.value = value
        self.delay = delay
        self.shareable = shareable
        self.calls = 0

    async def __call__(self) -> Computed:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return Computed(self.value, shareable=self.shareable)


def failed_operations() -> Counter[str]:
    """The skilltree_cache_errors_total metric of this process, by operation."""
    return Counter(
        {
            operation: int(REGISTRY.get_sample_value(ERRORS, {"operation": operation}) or 0)
            for operation in ("read", "write", "lock", "unlock", "invalidate")
        }
    )


@pytest.fixture
async def cache(shared_state: RedisSettings) -> AsyncIterator[Cache]:
    cache = Cache.from_settings(CacheSettings(lock_seconds=5), shared_state)
    yield cache
    await cache.close()


async def test_a_second_read_is_a_hit_that_does_not_recompute(cache: Cache) -> None:
    source = Source()

    assert await cache.fetch(TREE, source, TTL) == b"v1"
    assert await cache.fetch(TREE, source, TTL) == b"v1"

    assert source.calls == 1
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)


async def test_a_hit_hands_back_the_stored_bytes_without_inspecting_them(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cashews calls repr() on every value it reads, to catch broken pickles. The cache stores
    # only bytes it wrote and never pickles: repr() of a 160 kB tree was 97 % of a hit when the
    # embedded default kept its values in cashews' memory backend (0.42 ms); it keeps them
    # itself now (`InProcess`), but Redis reads still go through cashews. Watch its own name.
    tree = b"[" + b"0," * 80_000 + b"0]"
    source = Source(tree)
    assert await cache.fetch(TREE, source, TTL) == tree

    def refuse(value: object) -> str:
        raise AssertionError(f"a cached value of {len(str(value))} characters went through repr()")

    monkeypatch.setattr(cashews.serialize, "repr", refuse, raising=False)
    monkeypatch.setattr(pickle, "loads", refuse)

    assert await cache.fetch(TREE, source, TTL) == tree
    assert source.calls == 1


async def test_invalidating_a_namespace_recomputes_its_entries_and_no_others(cache: Cache) -> None:
    tree, other = Source(b"old"), Source(b"other")
    other_key = Key("roadmap:api:tree", ("roadmap:api",))
    await cache.fetch(TREE, tree, TTL)
    await cache.fetch(other_key, other, TTL)

    tree.value = b"new"
    await cache.invalidate(["roadmap:web"])

    assert await cache.fetch(TREE, tree, TTL) == b"new"
    assert await cache.fetch(other_key, other, TTL) == b"other"
    assert (tree.calls, other.calls) == (2, 1)


async def test_an_entry_is_stale_when_any_of_its_namespaces_changes(cache: Cache) -> None:
    summary = Key("learner:1:web:summary", ("learner:1", "roadmap:web"))
    source = Source()
    await cache.fetch(summary, source, TTL)

    await cache.invalidate(["roadmap:web"])
    await cache.fetch(summary, source, TTL)
    await cache.invalidate(["learner:1"])
    await cache.fetch(summary, source, TTL)

    assert source.calls == 3


async def test_an_entry_expires_after_its_ttl(cache: Cache) -> None:
    source = Source()
    await cache.fetch(TREE, source, 1)

    await asyncio.sleep(1.1)
    await cache.fetch(TREE, source, 1)

    assert source.calls == 2


async def test_concurrent_misses_recompute_once_and_all_get_the_value(cache: Cache) -> None:
    source = Source(delay=0.2)

    values = await asyncio.gather(*(cache.fetch(TREE, source, TTL) for _ in range(20)))

    assert values == [b"v1"] * 20
    assert source.calls == 1
    assert cache.stats.waits == 19


async def test_a_personal_result_is_never_stored_nor_handed_to_waiters(cache: Cache) -> None:
    private = Source(b"mine", delay=0.1, shareable=False)

    values = await asyncio.gather(*(cache.fetch(TREE, private, TTL) for _ in range(3)))
    await cache.fetch(TREE, private, TTL)

    assert values == [b"mine"] * 3
    # Each caller computed its own (with its own access check): nothing was shared or stored.
    assert private.calls == 4
    assert cache.stats.hits == 0


async def test_a_failed_recompute_does_not_stop_the_next_request(cache: Cache) -> None:
    async def failing() -> Computed:
        raise LookupError("not found")

    with pytest.raises(LookupError):
        await cache.fetch(TREE, failing, TTL)

    assert await cache.fetch(TREE, Source(), TTL) == b"v1"


async def test_a_disabled_cache_always_computes(shared_state: RedisSettings) -> None:
    cache = Cache.from_settings(CacheSettings(enabled=False), shared_state)
    source = Source()

    await cache.fetch(TREE, source, TTL)
    await cache.fetch(TREE, source, TTL)

    assert source.calls == 2
    await cache.close()


@asynccontextmanager
async def two_instances_sharing_redis() -> AsyncIterator[tuple[Cache, Cache]]:
    """The caches of two instances of the service, on one Redis under a prefix of their own."""
    async with isolated_prefix() as prefix:
        settings = RedisSettings(url=REDIS_URL, key_prefix=prefix)
        first = Cache.from_settings(CacheSettings(), settings)
        second = Cache.from_settings(CacheSettings(), settings)
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


@pytest.mark.redis
async def test_two_instances_sharing_redis_recompute_a_key_once() -> None:
    source = Source(delay=0.3)
    async with two_instances_sharing_redis() as (first, second):
        values = await asyncio.gather(
            *(instance.fetch(TREE, source, TTL) for instance in (first, second) * 5)
        )
        await first.invalidate(["roadmap:web"])
        source.value = b"v2"
        after = await second.fetch(TREE, source, TTL)

    assert values == [b"v1"] * 10
    assert source.calls == 2  # once for the ten concurrent readers, once after invalidating
    assert after == b"v2"


@pytest.mark.redis
async def test_local_copies_answer_hits_until_any_instance_invalidates_them() -> None:
    source = Source(b"v1")
    async with two_instances_sharing_redis() as (first, second):
        await first.fetch(TREE, source, TTL)  # computed and stored: copied locally too
        await first.fetch(TREE, source, TTL)
        await second.fetch(TREE, source, TTL)  # read from Redis, then copied
        await second.fetch(TREE, source, TTL)
        source.value = b"v2"
        await second.invalidate(["roadmap:web"])
        after = await first.fetch(TREE, source, TTL)

    assert (first.stats.local_hits, second.stats.local_hits) == (1, 1)
    assert after == b"v2"
    assert source.calls == 2


def test_local_copies_keep_the_most_recent_within_their_bytes_and_ttl() -> None:
    now = [0.0]
    copies = LocalCopies(max_bytes=1000, timer=lambda: now[0])
    for name in ("a", "b", "c"):
        copies.put(name, name.encode() * 400, ttl_seconds=60)
    copies.put("huge", b"x" * 1001, ttl_seconds=60)

    assert [copies.get(name) is not None for name in ("a", "b", "c", "huge")] == [
        False,  # the least recently used went to make room for "c"
        True,
        True,
        False,  # larger than the whole budget
    ]
    now[0] = 61.0
    assert copies.get("c") is None


async def test_an_unreachable_redis_serves_from_the_source_and_counts_the_failures() -> None:
    # Port 1 on loopback: nothing listens, connections are refused at once.
    cache = Cache.from_settings(
        CacheSettings(), RedisSettings(url="redis://127.0.0.1:1/0", timeout_seconds=0.5)
    )
    source = Source()
    counted_before = failed_operations()

    with capture_logs() as logs:
        values = [await cache.fetch(TREE, source, TTL) for _ in range(3)]
        await cache.invalidate(["roadmap:web"])

    assert values == [b"v1"] * 3
    assert source.calls == 3
    assert cache.stats.errors == 4
    assert failed_operations() - counted_before == {"read": 3, "invalidate": 1}
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == [
        "cache unavailable; reading from the database"
    ]
    await cache.close()


@pytest.mark.redis
async def test_redis_stopping_mid_way_falls_back_to_the_source_then_recovers() -> None:
    target = urlsplit(REDIS_URL)
    async with (
        isolated_prefix() as prefix,
        tcp_proxy(target.hostname or "", target.port or 6379) as proxy,
    ):
        settings = RedisSettings(
            url=f"redis://127.0.0.1:{proxy.port}{target.path}", key_prefix=prefix, timeout_seconds=1
        )
        cache = Cache.from_settings(CacheSettings(), settings)
        source = Source()
        try:
            await cache.fetch(TREE, source, TTL)
            await cache.fetch(TREE, source, TTL)
            assert (source.calls, cache.stats.errors) == (1, 0)

            await proxy.stop()
            with capture_logs() as down:
                during = await cache.fetch(TREE, source, TTL)

            await proxy.start()
            with capture_logs() as up:
                after = await cache.fetch(TREE, source, TTL)
        finally:
            await cache.close()

    assert during == b"v1"
    assert source.calls == 2  # the outage read the source; the entry was still there after
    assert after == b"v1"
    assert cache.stats.errors >= 1
    assert [entry["event"] for entry in down] == ["cache unavailable; reading from the database"]
    assert [entry["event"] for entry in up] == ["cache available again"]


@asynccontextmanager
async def listening_instances(
    broadcast_url: str = REDIS_URL, cache_url: str = REDIS_URL
) -> AsyncIterator[tuple[Cache, Cache, RedisBroadcaster]]:
    """Two instances whose caches hear every invalidation (the app's lifespan wiring); the
    second one's broadcast connection goes through `broadcast_url`."""
    async with isolated_prefix() as prefix:
        first_fanout = RedisBroadcaster(REDIS_URL, f"{prefix}rt:")
        second_fanout = RedisBroadcaster(broadcast_url, f"{prefix}rt:")
        await first_fanout.start()
        await second_fanout.start()
        first = Cache.from_settings(
            CacheSettings(), RedisSettings(url=REDIS_URL, key_prefix=prefix), first_fanout
        )
        second = Cache.from_settings(
            CacheSettings(), RedisSettings(url=cache_url, key_prefix=prefix), second_fanout
        )
        await first.listen(first_fanout)
        await second.listen(second_fanout)
        await asyncio.sleep(0.05)  # the listeners subscribe
        try:
            yield first, second, second_fanout
        finally:
            for cache in (first, second):
                await cache.close()
            for fanout in (first_fanout, second_fanout):
                await fanout.close()


@pytest.mark.redis
async def test_a_local_hit_needs_no_redis_while_invalidations_are_pushed() -> None:
    target = urlsplit(REDIS_URL)
    async with tcp_proxy(target.hostname or "", target.port or 6379) as proxy:
        cache_url = f"redis://127.0.0.1:{proxy.port}{target.path}"
        async with listening_instances(cache_url=cache_url) as (_, second, _fanout):
            source = Source(b"v1")
            await second.fetch(TREE, source, TTL)
            await second.fetch(TREE, source, TTL)
            await proxy.stop()  # the cache's own connection to Redis is gone
            during = await second.fetch(TREE, source, TTL)
            copy = second.local_entry(TREE)

    assert during == b"v1"
    assert copy is not None
    assert copy.value == b"v1"
    assert (source.calls, second.stats.errors) == (1, 0)


@pytest.mark.redis
async def test_another_instance_sees_an_invalidation_within_100_ms() -> None:
    async with listening_instances() as (first, second, _fanout):
        source = Source(b"v1")
        await second.fetch(TREE, source, TTL)
        assert second.local_entry(TREE) is not None  # served without Redis from now on
        source.value = b"v2"
        started = time.monotonic()
        await first.invalidate(["roadmap:web"])
        while (value := await second.fetch(TREE, source, TTL)) != b"v2":
            assert time.monotonic() - started < 0.1, "not seen within 100 ms"
            await asyncio.sleep(0.002)
        seen_after = time.monotonic() - started

    assert value == b"v2"
    assert seen_after < 0.1
    assert second.heard == 1


@pytest.mark.redis
async def test_local_copies_are_not_trusted_while_the_subscription_is_lost() -> None:
    target = urlsplit(REDIS_URL)
    async with tcp_proxy(target.hostname or "", target.port or 6379) as proxy:
        broadcast_url = f"redis://127.0.0.1:{proxy.port}{target.path}"
        async with listening_instances(broadcast_url=broadcast_url) as (first, second, fanout):
            source = Source(b"v1")
            await second.fetch(TREE, source, TTL)
            assert second.local_entry(TREE) is not None
            await proxy.stop()  # the announcement of the next write cannot reach `second`
            await until(lambda: not fanout.connected)
            source.value = b"v2"
            await first.invalidate(["roadmap:web"])
            unheard = second.local_entry(TREE)
            during = await second.fetch(TREE, source, TTL)  # asks Redis for the tokens

            await proxy.start()
            await until(lambda: fanout.connected)
            after_reconnecting = second.local_entry(TREE)  # nothing from before is trusted

    assert unheard is None
    assert during == b"v2"
    assert after_reconnecting is None


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait (bounded) until `condition` holds."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def test_remembered_tokens_are_trusted_for_a_bounded_time() -> None:
    fanout = LocalBroadcaster()
    now = [0.0]
    tokens = RememberedTokens(trust_seconds=30, timer=lambda: now[0])
    await tokens.listen(fanout)
    try:
        await until(tokens.listening)
        tokens.remember(TREE.namespaces, [b"t1"], tokens.generation)
        fresh = tokens.versions(TREE.namespaces)
        now[0] = 31.0
        expired = tokens.versions(TREE.namespaces)
    finally:
        await tokens.close()

    assert fresh == "t1"
    assert expired is None


async def test_a_malformed_announcement_does_not_leave_the_cache_deaf() -> None:
    """An announcement the listener cannot read must not end its listening while it goes on
    trusting what it remembers: the next invalidation has to be heard."""
    fanout = LocalBroadcaster()
    tokens = RememberedTokens(trust_seconds=30)
    await tokens.listen(fanout)
    try:
        await until(tokens.listening)
        await fanout.publish(CHANNEL, {"namespaces": 5}, keep=False)
        await until(tokens.listening)  # again, after the failed message
        tokens.remember(TREE.namespaces, [b"t1"], tokens.generation)
        assert tokens.versions(TREE.namespaces) is not None
        await fanout.publish(CHANNEL, {"namespaces": ["roadmap:web"]}, keep=False)
        await until(lambda: tokens.versions(TREE.namespaces) is None)
    finally:
        await tokens.close()


@pytest.mark.redis
async def test_an_instance_hearing_an_invalidation_reads_the_new_token_at_once() -> None:
    """The new token is stored before the announcement goes out (one script, one round trip):
    whoever hears it and reads the token from Redis gets the new one."""
    async with isolated_prefix() as prefix:
        redis_settings = RedisSettings(url=REDIS_URL, key_prefix=prefix)
        fanout, listener = (RedisBroadcaster(REDIS_URL, f"{prefix}rt:") for _ in range(2))
        for broadcaster in (fanout, listener):
            await broadcaster.start()
        cache = Cache.from_settings(CacheSettings(), redis_settings, fanout)
        tokens = Redis.from_url(REDIS_URL)
        token_key = f"{prefix}cache:ns:roadmap:web"
        try:
            await cache.fetch(TREE, Source(), TTL)  # the namespace has a token now
            before = await tokens.get(token_key)
            async with listener.subscribe([CHANNEL]) as subscription:
                await cache.invalidate(["roadmap:web"])
                heard = await subscription.next(wait_seconds=1)
                after = await tokens.get(token_key)
            ttl = await tokens.ttl(token_key)
            # Read back by the cache as its own token: the entry is stored, then hit.
            source = Source(b"v2")
            values = [await cache.fetch(TREE, source, TTL) for _ in range(2)]
            stats = cache.stats
        finally:
            await tokens.aclose()
            await cache.close()
            for broadcaster in (fanout, listener):
                await broadcaster.close()

    assert heard is not None
    assert heard.message == {"namespaces": ["roadmap:web"]}
    assert before is not None
    assert after not in (None, before)
    assert ttl > 29 * 24 * 3600  # a token outlives every entry that uses it
    assert values == [b"v2", b"v2"]
    assert (source.calls, stats.hits, stats.errors) == (1, 1, 0)


async def test_a_unit_of_work_that_marks_nothing_stale_invalidates_nothing(
    database: Database,
) -> None:
    cache = in_process_cache()
    invalidated: list[set[str]] = []

    async def record(namespaces: set[str]) -> None:
        invalidated.append(set(namespaces))

    cache.invalidate = record  # type: ignore[method-assign]
    database.on_every_unit_of_work(cache.bind)
    try:
        async with database.unit_of_work() as session:
            await session.execute(text("SELECT 1"))
        async with database.unit_of_work() as session:
            await session.execute(text("SELECT 1"))
            stale_on_commit(session, "roadmap:web")
    finally:
        database.remove_unit_of_work_hook(cache.bind)

    assert invalidated == [{"roadmap:web"}]


def in_process_cache(**settings: Any) -> Cache:
    """The embedded default's cache: no SKILLTREE_REDIS_URL."""
    return Cache.from_settings(CacheSettings(**settings), RedisSettings())


async def test_in_process_a_hit_is_trusted_without_asking_anything_until_an_invalidation() -> None:
    """Without Redis the namespace tokens are this process's own: every hit is a trusted local
    one (what the fast path answers from), and an invalidation is seen by the very next read."""
    cache = in_process_cache()
    source = Source(b"v1")
    try:
        assert cache.local_entry(TREE) is None  # nothing stored yet
        await cache.fetch(TREE, source, TTL)
        copy = cache.local_entry(TREE)
        again = cache.local_entry(TREE)
        source.value = b"v2"
        await cache.invalidate(["roadmap:web"])
        after_invalidating = cache.local_entry(TREE)
        value = await cache.fetch(TREE, source, TTL)
        renewed = cache.local_entry(TREE)
    finally:
        await cache.close()

    assert copy is not None
    assert copy.value == b"v1"
    assert again is copy  # the same copy: what was derived from it is kept with it
    assert after_invalidating is None
    assert value == b"v2"
    assert renewed is not None
    assert renewed.value == b"v2"
    assert renewed is not copy
    assert source.calls == 2
    assert (cache.stats.hits, cache.stats.local_hits) == (3, 3)  # the three copies found


async def test_in_process_a_reader_that_computed_before_a_write_does_not_store_over_it() -> None:
    """The write always wins in memory too: a recompute that started before an invalidation
    stores under the namespace's old token, which no later read is built from."""
    cache = in_process_cache()
    slow = Source(b"old", delay=0.1)
    try:
        reading = asyncio.create_task(cache.fetch(TREE, slow, TTL))
        await asyncio.sleep(0.02)  # the reader has its key and is computing
        await cache.invalidate(["roadmap:web"])
        assert await reading == b"old"
        fresh = Source(b"new")
        value = await cache.fetch(TREE, fresh, TTL)
        copy = cache.local_entry(TREE)
    finally:
        await cache.close()

    assert value == b"new"
    assert copy is not None
    assert copy.value == b"new"


async def test_in_process_entries_are_bounded_by_count_and_by_bytes() -> None:
    by_count = in_process_cache(memory_max_entries=10)
    by_bytes = in_process_cache(local_max_bytes=1000)
    keys = [Key(f"roadmap:r{n}:tree", (f"roadmap:r{n}",)) for n in range(11)]
    try:
        small = Source(b"x" * 10)
        for key in keys:
            await by_count.fetch(key, small, TTL)
        count_kept = [by_count.local_entry(key) is not None for key in keys]
        large = Source(b"y" * 400)
        for key in keys[:3]:
            await by_bytes.fetch(key, large, TTL)
        await by_bytes.fetch(keys[3], Source(b"z" * 1001), TTL)
        bytes_kept = [by_bytes.local_entry(key) is not None for key in keys[:4]]
    finally:
        await by_count.close()
        await by_bytes.close()

    assert count_kept == [False] + [True] * 10  # the least recently used went first
    # Three of 400 bytes do not fit in 1,000: the oldest went; one over the budget is not kept.
    assert bytes_kept == [False, True, True, False]


async def test_in_process_an_invalidation_announces_nothing() -> None:
    """No other process can hear an in-process cache's announcement, and nothing in this one
    needs it: the tokens it changed are the ones every read is built from."""
    fanout = LocalBroadcaster()
    await fanout.start()
    cache = Cache.from_settings(CacheSettings(), RedisSettings(), fanout)
    await cache.listen(fanout)
    try:
        async with fanout.subscribe([CHANNEL]) as subscription:
            await cache.invalidate(["roadmap:web"])
            heard = await subscription.next(wait_seconds=0.05)
        listening = cache.listening()
    finally:
        await cache.close()
        await fanout.close()

    assert heard is None
    assert not listening
