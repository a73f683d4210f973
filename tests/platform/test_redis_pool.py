"""The shared Redis client waits its turn for a connection instead of failing a request.

Every user of the pool (sessions, throttles, presence, rate limits) meets it: a burst of
requests larger than the pool must queue for a connection, up to the Redis timeout, as a
database pool does, and not end in `MaxConnectionsError`.
"""

from __future__ import annotations

import asyncio

import pytest

from skilltree.platform.config import RedisSettings
from skilltree.platform.redis import create_redis
from tests.support.redis import REDIS_URL, isolated_prefix

pytestmark = pytest.mark.redis


async def test_a_burst_larger_than_the_pool_waits_for_connections() -> None:
    async with isolated_prefix() as prefix:
        redis = create_redis(RedisSettings(url=REDIS_URL, max_connections=2))
        assert redis is not None
        try:
            # Each call holds its connection for 50 ms on the server: six need three turns.
            waits = [redis.blpop([f"{prefix}nothing"], timeout=0.05) for _ in range(6)]
            replies = await asyncio.gather(*waits)
        finally:
            await redis.aclose()

    assert replies == [None] * 6


def test_the_pool_size_is_a_setting_with_a_sane_bound() -> None:
    assert RedisSettings().max_connections == 100
    with pytest.raises(ValueError, match="max_connections"):
        RedisSettings(max_connections=0)
