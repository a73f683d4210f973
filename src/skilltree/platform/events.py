"""Domain events: emitted in the transaction of the change, delivered to idempotent consumers.

    events.emit(session, "member.joined", at=clock.now(), org_id=org.id, data={...})

is the whole producer side: the event is an outbox row committed (or rolled back) with the
change itself. The relay publishes it as an `events.deliver` task, whose handler offers it to
every consumer that subscribed to its type.

Delivery is at-least-once (the relay can publish a row twice; a worker can die after applying
an event and before acknowledging it), so each consumer applies an event at most once: it
records (consumer, event id) in `processed_events` in the same transaction as its effect, and
skips events already recorded there.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import Clock
from skilltree.platform.db import is_mysql
from skilltree.platform.queue import outbox
from skilltree.platform.queue.models import ProcessedEvent
from skilltree.platform.queue.retry import RetryPolicy
from skilltree.platform.queue.tasks import Job, Payload, task

DELIVER_TASK = "events.deliver"
# The events a unit of work emitted, for what reacts to them in-process once it commits.
EMITTED = "skilltree.emitted_events"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    occurred_at: datetime
    org_id: int | None
    data: dict[str, Any]

    def to_payload(self) -> Payload:
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "org_id": self.org_id,
            "data": self.data,
        }

    @classmethod
    def from_payload(cls, payload: Payload) -> Event:
        return cls(
            id=str(payload["id"]),
            type=str(payload["type"]),
            occurred_at=datetime.fromisoformat(str(payload["occurred_at"])),
            org_id=payload.get("org_id"),
            data=dict(payload.get("data") or {}),
        )


def new_event(
    event_type: str, *, at: datetime, data: dict[str, Any], org_id: int | None = None
) -> Event:
    """An event with a fresh id, not yet recorded anywhere (`emit`, `emit_now`, `outbox_row`)."""
    return Event(id=uuid.uuid4().hex, type=event_type, occurred_at=at, org_id=org_id, data=data)


def emit(
    session: AsyncSession,
    event_type: str,
    *,
    at: datetime,
    data: dict[str, Any],
    org_id: int | None = None,
) -> Event:
    """Record an event in the session's transaction; it is delivered only if that commits."""
    event = new_event(event_type, at=at, data=data, org_id=org_id)
    outbox.enqueue(session, DELIVER_TASK, event.to_payload(), now=at, message_id=event.id)
    record_emitted(session, event)
    return event


async def emit_now(
    session: AsyncSession,
    event_type: str,
    *,
    at: datetime,
    data: dict[str, Any],
    org_id: int | None = None,
) -> Event:
    """`emit`, with the outbox row written at once by a Core statement rather than flushed by
    the unit of work at commit: the same row in the same transaction, less of the ORM's work."""
    event = new_event(event_type, at=at, data=data, org_id=org_id)
    await outbox.insert_now(session, DELIVER_TASK, event.to_payload(), now=at, message_id=event.id)
    record_emitted(session, event)
    return event


def outbox_row(event: Event) -> dict[str, Any]:
    """The outbox row `emit_now` writes for `event`, for a statement that writes it along with
    the change itself (one round trip fewer); that statement's caller then `record_emitted`."""
    payload = event.to_payload()
    return outbox.message_row(DELIVER_TASK, payload, now=event.occurred_at, message_id=event.id)


def record_emitted(session: AsyncSession, event: Event) -> None:
    """Count `event` among this session's, once its outbox row is written or queued (`emit`,
    `emit_now`, or a statement writing `outbox_row`): what reacts to committed events
    in-process (realtime/live.py) sees it."""
    session.info.setdefault(EMITTED, []).append(event)


def emitted_by(session: AsyncSession) -> list[Event]:
    """The list this session's events are appended to, for a hook bound when the session opens:
    it keeps the list by reference, so it still reads every event after `take_emitted` has
    handed the same list to another hook."""
    emitted: list[Event] = session.info.setdefault(EMITTED, [])
    return emitted


def take_emitted(session: AsyncSession) -> list[Event]:
    """The events this session emitted since the last call (once it committed, they are real)."""
    emitted: list[Event] = session.info.pop(EMITTED, [])
    return emitted


ConsumerHandler = Callable[[AsyncSession, Job, Event], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    name: str
    event_types: frozenset[str]  # empty: every type
    handle: ConsumerHandler

    def wants(self, event: Event) -> bool:
        return not self.event_types or event.type in self.event_types


CONSUMERS: dict[str, Consumer] = {}


def subscribe(name: str, handle: ConsumerHandler, *event_types: str) -> None:
    """Subscribe a handler to events of these types (all types if none are named)."""
    CONSUMERS[name] = Consumer(name, frozenset(event_types), handle)


def consumer(name: str, *event_types: str) -> Callable[[ConsumerHandler], ConsumerHandler]:
    """`subscribe` as a decorator."""

    def register(handle: ConsumerHandler) -> ConsumerHandler:
        subscribe(name, handle, *event_types)
        return handle

    return register


async def apply_once(job: Job, subscriber: Consumer, event: Event) -> bool:
    """Apply an event in its own transaction unless this consumer already did; returns
    whether it was applied now."""
    async with job.resources.database.unit_of_work() as session:
        if not await _mark_processed(session, subscriber.name, event.id, job.resources.clock):
            return False
        await subscriber.handle(session, job, event)
    return True


async def _mark_processed(session: AsyncSession, name: str, event_id: str, clock: Clock) -> bool:
    """Insert the (consumer, event) mark; False if it was already there.

    The insert comes first in the transaction, so on SQLite it takes the write lock at once
    (a transaction that reads first and writes later can deadlock with another such one), and
    on PostgreSQL a concurrent duplicate waits on the key and then inserts nothing.
    """
    dialect = session.get_bind().dialect.name
    values = {"consumer": name, "event_id": event_id, "processed_at": clock.now()}
    if is_mysql(dialect):
        # INSERT IGNORE: a duplicate key inserts nothing and counts no row (MySQL has no
        # ON CONFLICT DO NOTHING, and ON DUPLICATE KEY UPDATE would count the match).
        statement: Any = insert(ProcessedEvent).values(values).prefix_with("IGNORE")
    else:
        upsert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = upsert(ProcessedEvent).values(values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


# Consumers touch only the database, so failures are outages (lock timeouts, a restart):
# retry for about an hour, then dead-letter for a person to look at.
@task(
    DELIVER_TASK,
    retry=RetryPolicy(max_attempts=10, base_delay_seconds=2.0, max_delay_seconds=600.0),
)
async def deliver(job: Job, payload: Payload) -> None:
    event = Event.from_payload(payload)
    for subscriber in list(CONSUMERS.values()):
        if subscriber.wants(event):
            await apply_once(job, subscriber, event)


async def forget_processed_before(session: AsyncSession, cutoff: datetime) -> int:
    """Clean-up: a duplicate arrives within minutes or hours of the original, never weeks."""
    result = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
