"""The gauges a scrape reads, measured when it reads them: the database pool of this process,
and the background backlog (queue, outbox, dead letters) from the database.

Measured per scrape rather than kept up to date by the code that changes them: the backlog is
changed by every process (API, workers, relay), and only the database knows its total.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.pool import QueuePool

from skilltree.platform.db import Database
from skilltree.platform.fair_pool import FairQueuePool
from skilltree.platform.observability import metrics
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.queue.models import DeadLetter, OutboxMessage, QueuedTask

BACKLOG_TIMEOUT_SECONDS = 2.0
log = get_logger("skilltree.metrics")


def measure_pool(database: Database) -> None:
    pool = database.engine.pool
    if not isinstance(pool, QueuePool):
        return  # SQLite's single connection: nothing to saturate
    waiting = pool.waiting() if isinstance(pool, FairQueuePool) else 0
    metrics.DB_POOL_CONNECTIONS.labels("in_use").set(pool.checkedout())
    metrics.DB_POOL_CONNECTIONS.labels("idle").set(pool.checkedin())
    metrics.DB_POOL_CONNECTIONS.labels("waiting").set(waiting)


async def measure_backlog(database: Database, now: datetime) -> None:
    """Queue depth and age, outbox lag and dead letters; left as they were if the database does
    not answer in time (the readiness alert covers that)."""
    try:
        await asyncio.wait_for(_measure_backlog(database, now), BACKLOG_TIMEOUT_SECONDS)
    except Exception as error:  # a scrape must not fail for a slow or absent database
        log.warning("backlog not measured", error=type(error).__name__)


async def _measure_backlog(database: Database, now: datetime) -> None:
    runnable = (QueuedTask.available_at <= now) & or_(
        QueuedTask.leased_until.is_(None), QueuedTask.leased_until < now
    )
    due = OutboxMessage.published_at.is_(None) & (OutboxMessage.available_at <= now)
    # Reads only: on SQLite it does not queue for the write lock behind the writers.
    async with database.unit_of_work(writes=False) as session:
        depth = await session.scalar(select(func.count()).select_from(QueuedTask))
        oldest_task = await session.scalar(
            select(func.min(QueuedTask.available_at)).where(runnable)
        )
        outbox = (
            await session.execute(
                select(func.count(), func.min(OutboxMessage.available_at)).where(due)
            )
        ).one()
        letters = await session.scalar(select(func.count()).select_from(DeadLetter))
    metrics.QUEUE_DEPTH.set(depth or 0)
    metrics.QUEUE_OLDEST_AGE.set(_age(oldest_task, now))
    metrics.OUTBOX_PENDING.set(outbox[0] or 0)
    metrics.OUTBOX_LAG.set(_age(outbox[1], now))
    metrics.DEAD_LETTERS.set(letters or 0)


def _age(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())
