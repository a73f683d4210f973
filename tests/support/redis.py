"""A real Redis for tests, with a key prefix of its own per test so runs never meet.

Outside CI an unreachable server skips the tests that need it, with the reason; in CI
(CI=true) it fails them, because production runs on Redis and those tests must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.databases import IN_CI

REDIS_URL = os.environ.get("SKILLTREE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def require_redis() -> None:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except (OSError, RedisError) as error:
        reason = f"Redis unreachable at {REDIS_URL}: {error}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: Redis tests must run)", pytrace=False)
        pytest.skip(f"{reason}; set SKILLTREE_TEST_REDIS_URL or start Redis")
    finally:
        await client.aclose()


@asynccontextmanager
async def isolated_prefix() -> AsyncIterator[str]:
    """A fresh key prefix; every key under it is deleted afterwards."""
    await require_redis()
    prefix = f"skilltree-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
