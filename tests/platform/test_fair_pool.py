"""The PostgreSQL connection pool serves waiting requests first come, first served, and loses no
connection when a waiter gives up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.databases import temporary_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def one_connection() -> AsyncIterator[AsyncEngine]:
    """An engine whose pool has a single connection, so every other request must wait."""
    async with temporary_postgres_database() as url:
        settings = DatabaseSettings(url=url, pool_size=1, max_overflow=0, pool_timeout_seconds=2)
        engine = create_engine(settings)
        yield engine
        await engine.dispose()


async def checkout(engine: AsyncEngine) -> AsyncConnection:
    return await engine.connect()


async def until_waiting(engine: AsyncEngine, count: int) -> None:
    """Let the event loop run until `count` requests wait for a connection."""
    for _ in range(200):
        if len(engine.pool._pool._waiters) == count:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never saw {count} waiting requests")


async def test_waiting_requests_are_served_in_order_and_a_newcomer_waits_behind_them(
    one_connection: AsyncEngine,
) -> None:
    served: list[str] = []

    async def request(name: str) -> None:
        async with one_connection.connect() as connection:
            await connection.execute(text("SELECT 1"))
            served.append(name)

    holder = await one_connection.connect()
    first = asyncio.create_task(request("first"))
    await until_waiting(one_connection, 1)
    second = asyncio.create_task(request("second"))
    await until_waiting(one_connection, 2)

    # The connection comes back, and in the same instant a new request asks for one: it used to
    # take the connection before the woken waiter could run, overtaking both.
    await holder.close()
    await request("newcomer")
    await asyncio.gather(first, second)

    assert served == ["first", "second", "newcomer"]


async def test_a_waiter_that_times_out_leaves_the_line_and_the_next_one_is_served(
    one_connection: AsyncEngine,
) -> None:
    holder = await one_connection.connect()
    impatient = asyncio.create_task(checkout(one_connection))
    await until_waiting(one_connection, 1)
    with pytest.raises(exc.TimeoutError):
        await impatient  # pool_timeout_seconds=2

    patient = asyncio.create_task(checkout(one_connection))
    await until_waiting(one_connection, 1)
    await holder.close()
    connection = await asyncio.wait_for(patient, 1)

    assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    await connection.close()
    assert one_connection.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("handed_over_first", [False, True])
async def test_a_cancelled_waiter_loses_no_connection(
    one_connection: AsyncEngine, handed_over_first: bool
) -> None:
    holder = await one_connection.connect()
    gone = asyncio.create_task(checkout(one_connection))
    await until_waiting(one_connection, 1)

    if handed_over_first:
        # The connection is handed to the waiter, and the waiting request is cancelled before
        # it could take it: the connection must go back to the pool, not vanish with it.
        await holder.close()
        gone.cancel()
    else:
        gone.cancel()
        await holder.close()
    with pytest.raises(asyncio.CancelledError):
        await gone

    async with asyncio.timeout(1):  # the only connection is free again
        async with one_connection.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    assert one_connection.pool.checkedout() == 0  # type: ignore[attr-defined]
