"""SQLite's one write lock: units of work that write queue for it and never fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database, NestedWriter


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.from_settings(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"))
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await connection.execute(text("INSERT INTO counter VALUES (0)"))
    yield db
    await db.dispose()


async def increment(database: Database) -> None:
    async with database.unit_of_work() as session:
        # Read, then write: the pattern a deferred BEGIN cannot serve under contention.
        current = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
        await asyncio.sleep(0)  # let the other writers run in between
        await session.execute(text("UPDATE counter SET n = :n"), {"n": current + 1})


async def test_concurrent_writers_all_commit_and_none_is_lost(database: Database) -> None:
    await asyncio.gather(*(increment(database) for _ in range(32)))

    async with database.unit_of_work(writes=False) as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 32


async def test_readers_do_not_wait_for_a_writer(database: Database) -> None:
    async with database.unit_of_work() as writer:
        await writer.execute(text("UPDATE counter SET n = 5"))
        async with database.unit_of_work(writes=False) as reader:
            # WAL: the reader sees the last committed state, at once.
            assert (await reader.execute(text("SELECT n FROM counter"))).scalar_one() == 0


async def test_a_writer_inside_a_writer_is_refused_instead_of_waiting_for_itself(
    database: Database,
) -> None:
    async with database.unit_of_work():
        with pytest.raises(NestedWriter):
            async with database.unit_of_work():
                pass
