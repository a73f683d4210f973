"""The workload of the crash test: an idempotent consumer whose effect is a row per application.

`bench_applied` has no unique constraint on purpose: if the consumer's dedupe failed, a second
application would show up as a second row, and the crash test would count it.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.events import Event, consumer
from skilltree.platform.queue.tasks import Job

CREATE_APPLIED = "CREATE TABLE IF NOT EXISTS bench_applied (event_id VARCHAR(64) NOT NULL)"
WORK_SECONDS = float(os.environ.get("BENCH_WORK_SECONDS", "0.01"))


@consumer("bench.counter", "bench.tick")
async def count_tick(session: AsyncSession, job: Job, event: Event) -> None:
    await session.execute(
        text("INSERT INTO bench_applied (event_id) VALUES (:id)"), {"id": event.id}
    )
    # Some work after the write and before the commit: kills land mid-task.
    await asyncio.sleep(WORK_SECONDS)
