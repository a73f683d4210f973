"""Two instances behind one Redis: a flag changed through one is decided anew by the other
within moments (the change is announced on the broadcast channel once committed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.flags.provider import FeatureFlags
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RedisSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import Browser
from tests.support.redis import REDIS_URL, isolated_prefix

pytestmark = pytest.mark.redis

FLAG = "/v1/admin/flags/new-dashboard"


@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with isolated_prefix() as prefix:
        yield settings.model_copy(update={"redis": RedisSettings(url=REDIS_URL, key_prefix=prefix)})


@pytest.fixture
async def app(
    redis_settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """The instance the administrator talks to."""
    application = create_app(redis_settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def other(
    redis_settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """A second instance on the same database and Redis."""
    application = create_app(redis_settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def decided_within(flags: FeatureFlags, expected: bool, seconds: float) -> float | None:
    """How long until the instance decides `expected` for user 1; None if it never does."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < seconds:
        if await flags.is_enabled("new-dashboard", default=not expected, user_id=1) is expected:
            return loop.time() - started
        await asyncio.sleep(0.02)
    return None


async def heard(flags: FeatureFlags, count: int, seconds: float) -> bool:
    """Whether the instance heard `count` announcements from others within `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if flags.rule_sets.heard >= count:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_change_on_one_instance_reaches_the_other_promptly(
    root: Browser, other: FastAPI
) -> None:
    elsewhere: FeatureFlags = other.state.feature_flags
    created = await root.client.put(FLAG, json={"enabled": False}, headers=root.write_headers)
    assert created.status_code == 201, created.text
    assert await heard(elsewhere, 1, 2.0)
    assert await decided_within(elsewhere, False, 2.0) is not None
    loads = elsewhere.rule_sets.loads
    await elsewhere.is_enabled("new-dashboard", default=True, user_id=1)
    assert elsewhere.rule_sets.loads == loads  # kept in memory between changes

    changed = await root.client.patch(
        FLAG,
        json={"rollout_percentage": 100},
        headers=root.write_headers | {"if-match": created.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text

    # Far below the 30 s the rules would otherwise be kept: the announcement dropped them.
    waited = await decided_within(elsewhere, True, 2.0)
    assert waited is not None
    assert elsewhere.rule_sets.heard == 2
    assert elsewhere.rule_sets.loads == loads + 1
