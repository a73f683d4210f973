"""Load shedding: when every database connection is busy and the line waiting for one is full,
the next request is answered 503 with Retry-After at once instead of queueing without bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from skilltree.platform.errors import ServiceOverloaded
from skilltree.platform.observability.metrics import DB_POOL_SHED
from tests.support.databases import migrated_postgres_database
from tests.support.installation import served, settings_for

pytestmark = pytest.mark.postgres


@pytest.fixture
async def migrated_url() -> AsyncIterator[str]:
    async with migrated_postgres_database() as url:
        yield url


async def checkout(engine: AsyncEngine) -> AsyncConnection:
    return await engine.connect()


async def until_waiting(engine: AsyncEngine, count: int) -> None:
    for _ in range(400):
        if engine.pool.waiting() == count:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never saw {count} waiting requests")


async def test_a_request_beyond_a_full_line_is_turned_away_at_once(migrated_url: str) -> None:
    settings = DatabaseSettings(
        url=migrated_url, pool_size=1, max_overflow=0, pool_timeout_seconds=10, pool_max_waiting=1
    )
    engine = create_engine(settings)
    shed_before = DB_POOL_SHED._value.get()
    try:
        holder = await engine.connect()
        waiter = asyncio.create_task(checkout(engine))
        await until_waiting(engine, 1)

        started = time.monotonic()
        with pytest.raises(ServiceOverloaded) as refused:
            await engine.connect()
        refused_after = time.monotonic() - started

        await holder.close()
        served_connection = await asyncio.wait_for(waiter, timeout=5)
        assert (await served_connection.execute(text("SELECT 1"))).scalar() == 1
        await served_connection.close()
    finally:
        await engine.dispose()

    # Refused without waiting for the pool timeout (10 s), and the waiter was not disturbed.
    assert refused_after < 1
    assert refused.value.headers == {"Retry-After": "1"}
    assert DB_POOL_SHED._value.get() == shed_before + 1


async def test_the_line_bound_survives_the_pool_being_rebuilt(migrated_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=migrated_url, pool_max_waiting=7))
    try:
        await engine.dispose()  # SQLAlchemy builds a new pool from type(pool)
        assert engine.pool._pool.max_waiting == 7  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_an_overloaded_api_answers_a_503_problem_with_retry_after(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(migrated_url, tmp_path)
    settings = settings.model_copy(
        update={
            "database": DatabaseSettings(
                url=migrated_url, pool_size=1, max_overflow=0, pool_max_waiting=0
            )
        }
    )
    async with served(settings) as client:
        app: FastAPI = client._transport.app  # type: ignore[attr-defined]
        engine = app.state.resources.database.engine
        assert (await client.get("/v1/roadmaps")).status_code == 200

        holder = await engine.connect()  # every connection busy, and no line to wait in
        try:
            overloaded = await client.get("/v1/roadmaps")
            livez = await client.get("/livez")
        finally:
            await holder.close()
        recovered = await client.get("/v1/roadmaps")

    assert overloaded.status_code == 503
    assert overloaded.headers["content-type"] == "application/problem+json"
    assert overloaded.headers["retry-after"] == "1"
    assert overloaded.json()["type"].endswith("/problems/overloaded")
    assert livez.status_code == 200  # liveness needs no connection: the process is healthy
    assert recovered.status_code == 200
