"""A taskiq broker on the application's own database: the embedded default needs no server.

Queued work is a row, so it survives a restart like any other committed write. A worker claims
a row by setting a lease with one UPDATE (PostgreSQL adds `FOR UPDATE SKIP LOCKED`, so workers
never queue behind each other's row locks; SQLite serialises writers anyway) and deletes the row
when the task has run: acknowledgement after success. A worker killed mid-task never deletes
its row, so the row reappears when the lease runs out and another worker runs the task again.
The UPDATE that takes the lease also counts the delivery, so a task that kills every worker
that runs it is noticed (deliveries.py) instead of being handed out forever.

A worker that stops cancels the claim it has in flight, and a cancelled UPDATE may still have
been committed: its lease would then hide the message, run by nobody, until it ran out. So a
claim runs to its end whatever happens to the read that asked for it, and a lease the worker
will not use is handed back at once, its delivery uncounted.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

import structlog
from sqlalchemy import ColumnElement, Select, and_, delete, or_, select, update
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

from skilltree.platform.clock import Clock
from skilltree.platform.db import Database, is_mysql
from skilltree.platform.queue.deliveries import label_delivery
from skilltree.platform.queue.models import QueuedTask

log = structlog.get_logger(__name__)


class Claim(NamedTuple):
    """A leased message: acknowledging it needs the row and the lease token."""

    row_id: int
    lease_token: str
    message: bytes
    # 1 the first time the row is leased; more when earlier leases ran out unacknowledged.
    deliveries: int


class DatabaseBroker(AsyncBroker):
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        queue: str,
        lease_seconds: float,
        poll_interval_seconds: float,
    ) -> None:
        super().__init__()
        self.database = database
        self.clock = clock
        self.queue = queue
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_interval = poll_interval_seconds

    async def kick(self, message: BrokerMessage) -> None:
        now = self.clock.now()
        delay = float(message.labels.get("delay") or 0)
        async with self.database.unit_of_work() as session:
            session.add(
                QueuedTask(
                    queue=self.queue,
                    task_id=message.task_id,
                    task_name=message.task_name,
                    message=message.message,
                    enqueued_at=now,
                    available_at=now + timedelta(seconds=delay),
                    deliveries=0,
                )
            )

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        while True:
            claimed = await self._claim_to_the_end()
            if claimed is None:
                await asyncio.sleep(self.poll_interval)
                continue
            yield AckableMessage(
                data=label_delivery(self.formatter, claimed.message, claimed.deliveries),
                ack=partial(self._acknowledge, claimed.row_id, claimed.lease_token),
            )

    async def claim(self) -> Claim | None:
        """Lease the oldest ready message, counting the delivery; None when none is ready."""
        now = self.clock.now()
        token = secrets.token_hex(16)
        ready = self._ready(now)
        oldest = (
            select(QueuedTask.id)
            .where(ready)
            .order_by(QueuedTask.available_at, QueuedTask.id)
            .limit(1)
        )
        if is_mysql(self.database.dialect):
            return await self._claim_in_two_steps(oldest, token, now)
        if self.database.dialect == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        # `ready` is checked again by the UPDATE itself: between the subquery and the write
        # another worker may have leased the row, and then this UPDATE matches nothing.
        statement = (
            update(QueuedTask)
            .where(QueuedTask.id == oldest.scalar_subquery(), ready)
            .values(
                leased_until=now + self.lease,
                lease_token=token,
                deliveries=QueuedTask.deliveries + 1,
            )
            .returning(QueuedTask.id, QueuedTask.message, QueuedTask.deliveries)
            .execution_options(synchronize_session=False)
        )
        async with self.database.unit_of_work() as session:
            row = (await session.execute(statement)).first()
        return None if row is None else Claim(row.id, token, row.message, row.deliveries)

    async def _claim_to_the_end(self) -> Claim | None:
        """`claim()`, carried on when the read that asked for it is cancelled (the worker is
        stopping): the lease it took, if any, is then handed back before the cancellation goes
        on, since nobody will run its message."""
        claiming = asyncio.ensure_future(self.claim())
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            try:
                claimed = await claiming
                if claimed is not None:
                    await self._hand_back(claimed)
            except Exception as error:  # the stop goes on; the lease, if any, runs out
                log.warning(
                    "queue.claim_not_handed_back",
                    queue=self.queue,
                    error=f"{type(error).__name__}: {error}",
                )
            raise

    async def _hand_back(self, claim: Claim) -> None:
        """Release a lease whose message never reached a worker: ready again at once, and the
        delivery the lease counted taken back (no attempt was made)."""
        async with self.database.unit_of_work() as session:
            await session.execute(
                update(QueuedTask)
                .where(QueuedTask.id == claim.row_id, QueuedTask.lease_token == claim.lease_token)
                .values(
                    leased_until=None,
                    lease_token=None,
                    deliveries=QueuedTask.deliveries - 1,
                )
                .execution_options(synchronize_session=False)
            )

    async def _claim_in_two_steps(
        self, oldest: Select[Any], token: str, now: datetime
    ) -> Claim | None:
        # MySQL has no UPDATE ... RETURNING and refuses an UPDATE whose subquery reads the same
        # table, so the row is locked first (skipping rows other workers hold), then leased.
        async with self.database.unit_of_work() as session:
            row_id = (await session.execute(oldest.with_for_update(skip_locked=True))).scalar()
            if row_id is None:
                return None
            await session.execute(
                update(QueuedTask)
                .where(QueuedTask.id == row_id)
                .values(
                    leased_until=now + self.lease,
                    lease_token=token,
                    deliveries=QueuedTask.deliveries + 1,
                )
                .execution_options(synchronize_session=False)
            )
            row = (
                await session.execute(
                    select(QueuedTask.id, QueuedTask.message, QueuedTask.deliveries).where(
                        QueuedTask.id == row_id
                    )
                )
            ).one()
        return Claim(row.id, token, row.message, row.deliveries)

    def _ready(self, now: object) -> ColumnElement[bool]:
        return and_(
            QueuedTask.queue == self.queue,
            QueuedTask.available_at <= now,
            or_(QueuedTask.leased_until.is_(None), QueuedTask.leased_until < now),
        )

    async def _acknowledge(self, row_id: int, token: str) -> None:
        # Only the holder of the current lease deletes: a worker that overran its lease (and
        # whose task another worker is now running) must not delete the other's claim.
        async with self.database.unit_of_work() as session:
            await session.execute(
                delete(QueuedTask).where(QueuedTask.id == row_id, QueuedTask.lease_token == token)
            )
