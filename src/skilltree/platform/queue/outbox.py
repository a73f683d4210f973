"""The transactional outbox: work decided in a transaction is stored by that transaction.

Publishing to a broker and committing to a database cannot be one atomic step; whichever comes
second can fail after the first succeeded (an event for a change that was rolled back, or a
change whose event never left). So a unit of work only *writes* the message, in an outbox row
next to the change, and the relay publishes committed rows afterwards. A crash between
publishing and marking a row published publishes it again: delivery is at-least-once, and
consumers dedupe (see events.py).

The outbox also holds delayed work: a retry that must wait two minutes is a row whose
`available_at` is two minutes away, which works the same on every broker.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import Clock
from skilltree.platform.db import Database
from skilltree.platform.queue.client import TaskQueue
from skilltree.platform.queue.lifecycle import pause
from skilltree.platform.queue.models import OutboxMessage

log = structlog.get_logger(__name__)
RELAY_LEASE = timedelta(seconds=30)


def enqueue(
    session: AsyncSession,
    task_name: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    delay_seconds: float = 0.0,
    attempt: int = 1,
    message_id: str | None = None,
) -> str:
    """Queue a task as part of the session's transaction; returns the message id.

    Nothing is published if the transaction rolls back.
    """
    message_id = message_id or uuid.uuid4().hex
    session.add(
        OutboxMessage(
            message_id=message_id,
            task_name=task_name,
            args=[payload],
            labels={"attempt": attempt},
            created_at=now,
            available_at=now + timedelta(seconds=delay_seconds),
        )
    )
    return message_id


class Relay:
    """Moves committed outbox rows to the broker, oldest first, in batches."""

    def __init__(
        self,
        database: Database,
        queue: TaskQueue,
        clock: Clock,
        *,
        batch_size: int,
        poll_interval_seconds: float,
    ) -> None:
        self.database = database
        self.queue = queue
        self.clock = clock
        self.batch_size = batch_size
        self.poll_interval = poll_interval_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; an idle relay looks again every poll interval."""
        while not stop.is_set():
            try:
                published = await self.relay_batch()
            except Exception:
                # A broker or database outage: the rows stay in the outbox; try again later.
                log.exception("outbox.relay_failed")
                published = 0
            if published == 0:
                await pause(stop, self.poll_interval)

    async def relay_batch(self) -> int:
        """Publish one batch; returns how many rows were published."""
        batch = await self._claim_batch()
        published: list[int] = []
        try:
            for row in batch:
                await self.queue.publish(
                    row.task_name, row.args, task_id=row.message_id, labels=row.labels
                )
                published.append(row.id)
        finally:
            if published:
                await self._mark_published(published)
        return len(published)

    async def _claim_batch(self) -> list[OutboxMessage]:
        now = self.clock.now()
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.published_at.is_(None),
                OutboxMessage.available_at <= now,
                (OutboxMessage.leased_until.is_(None)) | (OutboxMessage.leased_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(self.batch_size)
        )
        if self.database.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        # One UPDATE ... RETURNING claims the batch: on SQLite a transaction that read first
        # and wrote second could fail if another connection wrote in between.
        claim = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(leased_until=now + RELAY_LEASE)
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        async with self.database.unit_of_work() as session:
            rows = list((await session.scalars(claim)).all())
        return sorted(rows, key=lambda row: row.id)

    async def _mark_published(self, ids: list[int]) -> None:
        async with self.database.unit_of_work() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(published_at=self.clock.now(), leased_until=None)
                .execution_options(synchronize_session=False)
            )


async def delete_published_before(session: AsyncSession, cutoff: datetime) -> int:
    """Clean-up: published rows are history once consumers had time to see them."""
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.published_at.is_not(None), OutboxMessage.published_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
