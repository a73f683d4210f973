"""The PostgreSQL connection pool serves waiting requests first come, first served, and loses no
connection when a waiter gives up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.databases import temporary_postgres_database

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def single_connection_engine(timeout_seconds: float) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool has a single connection, so every other request must wait."""
    async with temporary_postgres_database() as url:
        settings = DatabaseSettings(
            url=url, pool_size=1, max_overflow=0, pool_timeout_seconds=timeout_seconds
        )
        engine = create_engine(settings)
        try:
            yield engine
        finally:
            await engine.dispose()


@pytest.fixture
async def one_connection() -> AsyncIterator[AsyncEngine]:
    # Waiters here are served, not timed out: a generous timeout, so a test machine busy with
    # the rest of the suite cannot turn a slow hand-over into a timeout.
    async with single_connection_engine(timeout_seconds=30) as engine:
        yield engine


@pytest.fixture
async def impatient_pool() -> AsyncIterator[AsyncEngine]:
    async with single_connection_engine(timeout_seconds=2) as engine:
        yield engine


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
    impatient_pool: AsyncEngine,
) -> None:
    holder = await impatient_pool.connect()
    impatient = asyncio.create_task(checkout(impatient_pool))
    await until_waiting(impatient_pool, 1)
    with pytest.raises(exc.TimeoutError):
        await impatient  # pool_timeout_seconds=2

    patient = asyncio.create_task(checkout(impatient_pool))
    await until_waiting(impatient_pool, 1)
    await holder.close()
    connection = await patient  # a lost connection would time it out: pool_timeout_seconds=2

    assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    await connection.close()
    assert impatient_pool.pool.checkedout() == 0  # type: ignore[attr-defined]


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

    async with asyncio.timeout(10):  # the only connection is free again, not lost
        async with one_connection.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    assert one_connection.pool.checkedout() == 0  # type: ignore[attr-defined]


# --- overflow connections kept while the load lasts ---------------------------------------------


async def backend_pids_of_a_burst(engine: AsyncEngine, size: int) -> set[int]:
    """Check out `size` connections at once, note their PostgreSQL backends, give them back."""
    connections = [await engine.connect() for _ in range(size)]
    pids = {(await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() for c in connections}
    for connection in connections:
        await connection.close()
    return pids


async def test_a_burst_above_the_pool_size_reuses_the_overflow_connections_of_the_last_one() -> (
    None
):
    # Two workers sharing the load each hover around their pool size: every overflow connection
    # was closed the moment it came back and opened again (a PostgreSQL backend, the driver's
    # setup) for the next burst, several times a second.
    async with temporary_postgres_database() as url:
        settings = DatabaseSettings(url=url, pool_size=1, max_overflow=2)
        engine = create_engine(settings)
        try:
            first = await backend_pids_of_a_burst(engine, 3)
            second = await backend_pids_of_a_burst(engine, 3)

            assert second == first
            assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        finally:
            await engine.dispose()


async def test_overflow_connections_idle_longer_than_the_limit_are_closed() -> None:
    async with temporary_postgres_database() as url:
        settings = DatabaseSettings(
            url=url, pool_size=1, max_overflow=2, pool_overflow_idle_seconds=0.2
        )
        engine = create_engine(settings)
        try:
            first = await backend_pids_of_a_burst(engine, 3)
            await asyncio.sleep(0.3)
            # The next checkout retires the spares that idled too long; one connection stays.
            async with engine.connect() as connection:
                pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()

            assert pid in first
            assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]
            assert engine.pool.overflow() == 0  # type: ignore[attr-defined]
            # Within the limit again: a new burst opens what it needs and keeps it.
            assert len(await backend_pids_of_a_burst(engine, 3) & first) == 1
            assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
        finally:
            await engine.dispose()


async def test_with_no_idle_allowance_an_overflow_connection_is_closed_as_it_comes_back() -> None:
    async with temporary_postgres_database() as url:
        settings = DatabaseSettings(
            url=url, pool_size=1, max_overflow=2, pool_overflow_idle_seconds=0
        )
        engine = create_engine(settings)
        try:
            first = await backend_pids_of_a_burst(engine, 3)
            second = await backend_pids_of_a_burst(engine, 3)

            assert len(first & second) == 1  # only the pool's own connection is reused
            assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]
        finally:
            await engine.dispose()


async def test_disposing_the_pool_closes_the_kept_overflow_connections() -> None:
    async with temporary_postgres_database() as url:
        engine = create_engine(DatabaseSettings(url=url, pool_size=1, max_overflow=2))
        pids = await backend_pids_of_a_burst(engine, 3)
        await engine.dispose()

        async with engine.connect() as connection:  # a new pool, opened by the dispose
            rows = await connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": list(pids)},
            )
            assert rows.scalars().all() == []
        await engine.dispose()
