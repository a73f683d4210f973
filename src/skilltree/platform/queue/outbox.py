"""The transactional outbox: work decided in a transaction is stored by that transaction.

Publishing to a broker and committing to a database cannot be one atomic step; whichever comes
second can fail after the first succeeded (an event for a change that was rolled back, or a
change whose event never left). So a unit of work only *writes* the message, in an outbox row
next to the change, and the relay publishes committed rows afterwards. A crash between
publishing and marking a row published publishes it again: delivery is at-least-once, and
consumers dedupe (see events.py).

A process may also hand the rows it just committed on itself (`hand_over_now`), so that an
e-mail leaves at once rather than at the relay's next poll. The row stays the record: that
early hand-over claims it as a relay would, and if it fails, a relay takes over.

The outbox also holds delayed work: a retry that must wait two minutes is a row whose
`available_at` is two minutes away, which works the same on every broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Select, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import Clock
from skilltree.platform.db import Database, is_mysql
from skilltree.platform.observability.tracing import current_trace_labels
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
            # The trace the task continues (empty when tracing is off).
            labels={"attempt": attempt, **current_trace_labels()},
            created_at=now,
            available_at=now + timedelta(seconds=delay_seconds),
        )
    )
    return message_id


# Inline: without it SQLAlchemy asks for the new row's id back (a RETURNING on PostgreSQL,
# rows to fetch and a result to build), and nothing reads it: the message id is the key.
_INSERT_MESSAGE = insert(cast(Table, OutboxMessage.__table__)).inline()


async def insert_now(
    session: AsyncSession,
    task_name: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    message_id: str | None = None,
) -> str:
    """`enqueue` (due at once, first attempt) as one prebuilt Core statement sent now, in the
    session's transaction, instead of an ORM row flushed at commit: for hot write paths, where
    the unit of work's flush of the row cost more than the statement itself."""
    row = message_row(task_name, payload, now=now, message_id=message_id)
    await session.execute(_INSERT_MESSAGE, row)
    return str(row["message_id"])


def message_row(
    task_name: str, payload: dict[str, Any], *, now: datetime, message_id: str | None = None
) -> dict[str, Any]:
    """The outbox row `insert_now` writes, for a statement that writes it itself."""
    return {
        "message_id": message_id or uuid.uuid4().hex,
        "task_name": task_name,
        "args": [payload],
        "labels": {"attempt": 1, **current_trace_labels()},
        "created_at": now,
        "available_at": now,
    }


# What becomes of a claimed row: the relay publishes it to the broker; an early hand-over of
# e-mail in the embedded default writes it to the .eml folder instead (transactional_mail.py).
HandOver = Callable[[OutboxMessage], Awaitable[None]]


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
        batch = await claim(self.database, self.clock.now(), limit=self.batch_size)
        published: list[int] = []
        try:
            for row in batch:
                await publish(self.queue, row)
                published.append(row.id)
        finally:
            if published:
                await self._mark_published(published)
        return len(published)

    async def _mark_published(self, ids: list[int]) -> None:
        await mark_published(self.database, ids, self.clock.now())


async def publish(queue: TaskQueue, row: OutboxMessage) -> None:
    await queue.publish(row.task_name, row.args, task_id=row.message_id, labels=row.labels)


async def hand_over_now(
    database: Database, clock: Clock, message_ids: Sequence[str], hand_over: HandOver
) -> int:
    """Hand these rows on at once instead of at a relay's next poll; returns how many.

    They are claimed the way a relay claims a batch, so no relay hands them on as well; a row
    this call cannot hand on keeps its claim until it lapses, and then a relay takes it.
    """
    rows = await claim(database, clock.now(), limit=len(message_ids), message_ids=message_ids)
    for row in rows:
        await hand_over(row)
        await mark_published(database, [row.id], clock.now())
    return len(rows)


async def claim(
    database: Database,
    now: datetime,
    *,
    limit: int,
    message_ids: Sequence[str] | None = None,
) -> list[OutboxMessage]:
    """Lease up to `limit` due rows that are unpublished and unclaimed (only those of
    `message_ids`, when given), oldest first."""
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.published_at.is_(None),
            OutboxMessage.available_at <= now,
            (OutboxMessage.leased_until.is_(None)) | (OutboxMessage.leased_until < now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if message_ids is not None:
        due = due.where(OutboxMessage.message_id.in_(message_ids))
    if is_mysql(database.dialect):
        return await _claim_in_two_steps(database, due, now)
    if database.dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    # One UPDATE ... RETURNING claims the batch: on SQLite a transaction that read first
    # and wrote second could fail if another connection wrote in between.
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(leased_until=now + RELAY_LEASE)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    async with database.unit_of_work() as session:
        rows = list((await session.scalars(statement)).all())
    return sorted(rows, key=lambda row: row.id)


async def _claim_in_two_steps(
    database: Database, due: Select[Any], now: datetime
) -> list[OutboxMessage]:
    # MySQL has no UPDATE ... RETURNING and refuses an UPDATE whose subquery reads the same
    # table: lock the due rows (skipping those another relay holds), lease them, read them.
    async with database.unit_of_work() as session:
        ids = list((await session.scalars(due.with_for_update(skip_locked=True))).all())
        if not ids:
            return []
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(leased_until=now + RELAY_LEASE)
            .execution_options(synchronize_session=False)
        )
        query = select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
        return list((await session.scalars(query)).all())


async def mark_published(database: Database, ids: list[int], now: datetime) -> None:
    async with database.unit_of_work() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(published_at=now, leased_until=None)
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
