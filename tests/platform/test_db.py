"""The unit of work: committed when the block succeeds, rolled back when it raises."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from skilltree.platform.db import Database, after_commit
from skilltree.platform.errors import Conflict
from skilltree.platform.models import utc_now
from skilltree.roadmaps.models import Roadmap


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
