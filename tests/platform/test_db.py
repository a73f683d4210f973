"""The unit of work: committed when the block succeeds, rolled back when it raises; hooks that
meet every unit of work; the pool noticing connections the server dropped."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database, after_commit, create_engine
from skilltree.platform.errors import Conflict
from skilltree.platform.models import utc_now
from skilltree.roadmaps.models import Roadmap
from tests.support.databases import temporary_postgres_database


def roadmap(slug: str) -> Roadmap:
    now = utc_now()
    return Roadmap(
        slug=slug,
        title=slug,
        description="",
        source="import",
        version=1,
        content_hash="0" * 64,
        created_at=now,
        updated_at=now,
    )


async def count_roadmaps(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(select(func.count(Roadmap.id)))).scalar_one()


async def test_unit_of_work_commits_when_the_block_succeeds(database: Database) -> None:
    async with database.unit_of_work() as session:
        session.add(roadmap("kept"))

    assert await count_roadmaps(database) == 1


async def test_unit_of_work_rolls_back_when_the_block_raises(database: Database) -> None:
    async def add_then_fail() -> None:
        async with database.unit_of_work() as session:
            session.add(roadmap("lost"))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await add_then_fail()

    assert await count_roadmaps(database) == 0


async def test_timestamps_come_back_timezone_aware(database: Database) -> None:
    async with database.unit_of_work() as session:
        session.add(roadmap("tz"))

    async with database.sessionmaker() as session:
        stored = (await session.execute(select(Roadmap))).scalar_one()
        await session.refresh(stored)

    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() is not None


async def test_after_commit_callbacks_run_only_when_the_commit_succeeds(database: Database) -> None:
    ran: list[str] = []

    async def record(name: str) -> None:
        ran.append(name)

    async with database.unit_of_work() as session:
        after_commit(session, lambda: record("committed"))

    async def fail_after_registering() -> None:
        async with database.unit_of_work() as session:
            after_commit(session, lambda: record("rolled back"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_after_registering()

    assert ran == ["committed"]


async def test_an_error_that_keeps_its_changes_is_committed(database: Database) -> None:
    class CountedFailure(Conflict):
        keeps_changes = True

    async def fail_but_keep() -> None:
        async with database.unit_of_work() as session:
            session.add(roadmap("kept-despite-error"))
            raise CountedFailure("recorded, then refused")

    with pytest.raises(CountedFailure):
        await fail_but_keep()

    assert await count_roadmaps(database) == 1


async def test_every_unit_of_work_meets_the_hooks_until_one_is_removed(database: Database) -> None:
    seen: list[AsyncSession] = []
    database.on_every_unit_of_work(seen.append)

    async with database.unit_of_work() as first:
        pass
    async with database.unit_of_work() as second:
        pass
    database.remove_unit_of_work_hook(seen.append)
    async with database.unit_of_work():
        pass

    assert seen == [first, second]


@pytest.mark.postgres
@pytest.mark.parametrize("pre_ping", [True, False])
async def test_pre_ping_replaces_a_connection_the_server_dropped(pre_ping: bool) -> None:
    async with temporary_postgres_database() as url:
        engine = create_engine(DatabaseSettings(url=url, pool_size=1, pool_pre_ping=pre_ping))
        try:
            async with engine.connect() as connection:
                backend = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            # A failover or an idle timeout, in miniature: another client ends that connection.
            admin = create_engine(DatabaseSettings(url=url))
            async with admin.connect() as connection:
                await connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}
                )
            await admin.dispose()

            async def query_once() -> int:
                async with engine.connect() as connection:
                    return int((await connection.execute(text("SELECT 1"))).scalar_one())

            if pre_ping:
                assert await query_once() == 1
            else:
                with pytest.raises(DBAPIError):
                    await query_once()
        finally:
            await engine.dispose()
