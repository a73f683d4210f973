"""bench/rate_limit.py --round-trips: both ways of making the limiter's round trip are timed,
and the bare stream's really runs the script (each call counts one request)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bench.rate_limit import per_round_trip
from tests.support.redis import REDIS_URL, isolated_prefix


@pytest.mark.redis
async def test_the_bare_round_trip_runs_the_limiters_script() -> None:
    async with isolated_prefix() as prefix:
        figures = await per_round_trip(requests=20, rounds=2, prefix=prefix)
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            counted = await client.get(f"{prefix}ratelimit:bench:current")
        finally:
            await client.aclose()

    assert sorted(figures) == ["a bare stream", "the application's client"]
    assert all(len(values) == 2 and min(values) > 0 for values in figures.values())
    assert counted == "40"  # 20 calls in each of 2 rounds
