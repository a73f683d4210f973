"""Cron ticks are claimed once, whichever of two schedulers (each with its own connections)
gets there first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database, create_engine
from skilltree.platform.queue.models import OutboxMessage, ScheduledRun
from skilltree.platform.queue.scheduler import CronJob, Scheduler, cron_task

JOBS = {
    "test.every-minute": CronJob("test.every-minute", "* * * * *"),
    "test.hourly": CronJob("test.hourly", "0 * * * *"),
}


def test_the_latest_tick_is_at_or_before_now() -> None:
    job = CronJob("digest", "0 8 * * 1")  # Mondays 08:00
    friday = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    monday_at_eight = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    assert job.latest_tick(friday) == monday_at_eight
    assert job.latest_tick(monday_at_eight) == monday_at_eight


def test_a_bad_cron_expression_is_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="bad cron expression"):
        cron_task("test.broken", "61 * * * *")


async def test_two_schedulers_claim_each_tick_exactly_once(
    engine: AsyncEngine, bg_database: Database
) -> None:
    clock = FrozenClock(datetime(2026, 11, 27, 9, 59, 30, tzinfo=UTC))
    url = engine.url.render_as_string(hide_password=False)
    other_engine = create_engine(DatabaseSettings(url=url))
    first = Scheduler(bg_database, clock, instance="a", interval_seconds=1, jobs=JOBS)
    second = Scheduler(Database(other_engine), clock, instance="b", interval_seconds=1, jobs=JOBS)
    try:
        for _ in range(3):  # three rounds in the same minute, then the next hour begins
            await asyncio.gather(first.tick(), second.tick())
        clock.advance(minutes=1)
        for _ in range(3):
            await asyncio.gather(second.tick(), first.tick())
    finally:
        await other_engine.dispose()

    async with bg_database.unit_of_work() as session:
        runs = (await session.execute(select(ScheduledRun.job, ScheduledRun.tick_at))).all()
        queued = (await session.scalars(select(OutboxMessage.task_name))).all()
    assert sorted((job, tick.strftime("%H:%M")) for job, tick in runs) == [
        ("test.every-minute", "09:59"),
        ("test.every-minute", "10:00"),
        ("test.hourly", "09:00"),
        ("test.hourly", "10:00"),
    ]
    assert sorted(queued) == ["test.every-minute"] * 2 + ["test.hourly"] * 2
