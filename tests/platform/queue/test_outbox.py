"""The transactional outbox: events leave only with their transaction, and a relay that dies
mid-batch leads to duplicates that idempotent consumers absorb."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.events import CONSUMERS, Event, consumer
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.outbox import Relay
from skilltree.platform.queue.tasks import Job
from tests.platform.queue.brokers import counting_worker, everything_published, messages_held
from tests.support.background import ProcessKilled, eventually, make_resources

APPLIED: list[str] = []


@pytest.fixture
def counting_consumer() -> Iterator[list[str]]:
    APPLIED.clear()

    @consumer("test.counter", "test.happened")
    async def count(session: AsyncSession, job: Job, event: Event) -> None:
        APPLIED.append(event.id)

    yield APPLIED
    CONSUMERS.pop("test.counter", None)


def now() -> datetime:
    return datetime.now(UTC)


async def outbox_size(database: Database) -> int:
    async with database.unit_of_work() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_an_event_of_a_rolled_back_transaction_is_never_stored(
    bg_database: Database,
) -> None:
    async def failing_change() -> None:
        async with bg_database.unit_of_work() as session:
            events.emit(session, "test.happened", at=now(), data={})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()

    assert await outbox_size(bg_database) == 0


async def test_an_emitted_event_reaches_its_consumer_once(
    bg_database: Database, bg_settings: Settings, counting_consumer: list[str]
) -> None:
    async with bg_database.unit_of_work() as session:
        event = events.emit(session, "test.happened", at=now(), data={"n": 1})

    async with counting_worker(bg_settings, bg_database) as acknowledged:
        await eventually(lambda: _equal(counting_consumer, [event.id]), "the event")
        # Not only the first delivery: wait until the row is recorded as published (no relay
        # will hand it on again) and its delivery acknowledged, then stop the worker and find
        # the broker empty: a second delivery would have run or would still be held there.
        await eventually(lambda: everything_published(bg_database), "the row recorded as published")
        await eventually(lambda: _equal(len(acknowledged), 1), "the acknowledgement")

    assert await messages_held(bg_settings, bg_database) == 0
    assert acknowledged == [event.id]
    assert counting_consumer == [event.id]


class DyingRelay(Relay):
    """Publishes its batch, then dies before recording that it did (as kill -9 would)."""

    async def _mark_published(self, ids: list[int]) -> None:
        raise ProcessKilled


async def test_a_relay_killed_mid_batch_loses_nothing_and_nothing_is_applied_twice(
    bg_database: Database, bg_settings: Settings, counting_consumer: list[str]
) -> None:
    emitted = []
    async with bg_database.unit_of_work() as session:
        for n in range(20):
            emitted.append(events.emit(session, "test.happened", at=now(), data={"n": n}).id)
    _resources, queue = make_resources(bg_settings, bg_database)
    dying = DyingRelay(bg_database, queue, _resources.clock, batch_size=8, poll_interval_seconds=1)

    with pytest.raises(ProcessKilled):
        await dying.relay_batch()
    await queue.close()
    queued = await messages_held(bg_settings, bg_database)
    async with bg_database.unit_of_work() as session:
        unmarked = await session.scalar(
            select(func.count()).where(OutboxMessage.published_at.is_(None))
        )
    assert (queued, unmarked) == (8, 20)  # 8 published, none of them recorded as published

    # The restarted relay publishes those 8 again once the dead relay's claim lapses.
    restarted = Relay(bg_database, queue, _MinuteAhead(), batch_size=8, poll_interval_seconds=1)
    while await restarted.relay_batch():
        pass
    await queue.close()
    assert await messages_held(bg_settings, bg_database) == 28  # 20, and the 8 again
    async with counting_worker(bg_settings, bg_database, relay=False) as acknowledged:
        await eventually(lambda: _equal(len(acknowledged), 28), "every delivery, the 8 twice")

    assert await messages_held(bg_settings, bg_database) == 0
    assert len(acknowledged) == 28
    assert sorted(counting_consumer) == sorted(emitted)  # each exactly once


class _MinuteAhead:
    """A clock a minute ahead: past the dead relay's claim on its batch."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(minutes=1)


async def _equal(left: object, right: object) -> bool:
    return left == right
