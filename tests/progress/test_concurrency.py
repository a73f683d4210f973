"""Concurrent writes by one learner, on PostgreSQL with real commits: the advisory lock keeps
every event's "from" equal to the previous event's "to", and the projection equal to the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.accounts.models import User
from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from skilltree.platform.queue.models import OutboxMessage
from skilltree.progress import repository, service
from skilltree.roadmaps.models import Roadmap
from skilltree.roadmaps.policies import Viewer
from tests.support.rows import make_roadmap, make_user

pytestmark = pytest.mark.postgres


@pytest.fixture
async def committed(postgresql_engine: AsyncEngine) -> AsyncIterator[tuple[Database, int, str]]:
    """A learner and a one-topic roadmap committed for real, deleted afterwards with the
    events their changes left in the outbox."""
    database = Database(postgresql_engine)
    async with database.unit_of_work() as session:
        user = await make_user(session)
        roadmap, _ = await make_roadmap(session, 1)
        user_id, roadmap_id, slug = user.id, roadmap.id, roadmap.slug
    yield database, user_id, slug
    async with database.unit_of_work() as session:
        await session.execute(delete(Roadmap).where(Roadmap.id == roadmap_id))
        await session.execute(delete(User).where(User.id == user_id))
        await session.execute(delete(OutboxMessage))


async def test_concurrent_changes_keep_the_log_a_chain(
    committed: tuple[Database, int, str],
) -> None:
    database, user_id, slug = committed
    learner = service.Learner(user_id=user_id, viewer=Viewer(user_id=user_id), clock=FrozenClock())

    async def change(status: str) -> None:
        async with database.unit_of_work() as session:
            await service.set_status(session, learner, slug, "t0", status, None)

    await asyncio.gather(*(change(s) for s in ["done", "in_progress", "skipped", "todo"] * 4))

    async with database.unit_of_work() as session:
        events = await repository.events_of(session, user_id)
        assert [e.from_status for e in events[1:]] == [e.to_status for e in events[:-1]]
        assert events[0].from_status is None
        assert await service.replay(session, user_id) == await service.projection(session, user_id)
