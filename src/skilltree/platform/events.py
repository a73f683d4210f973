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

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.queue import outbox
from skilltree.platform.queue.models import ProcessedEvent
from skilltree.platform.queue.retry import RetryPolicy
from skilltree.platform.queue.tasks import Job, Payload, task

DELIVER_TASK = "events.deliver"


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


def emit(
    session: AsyncSession,
    event_type: str,
    *,
    at: datetime,
    data: dict[str, Any],
    org_id: int | None = None,
) -> Event:
    """Record an event in the session's transaction; it is delivered only if that commits."""
    event = Event(id=uuid.uuid4().hex, type=event_type, occurred_at=at, org_id=org_id, data=data)
    outbox.enqueue(session, DELIVER_TASK, event.to_payload(), now=at, message_id=event.id)
    return event


ConsumerHandler = Callable[[AsyncSession, Job, Event], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    name: str
    event_types: frozenset[str]  # empty: every type
    handle: ConsumerHandler

    def wants(self, event: Event) -> bool:
        return not self.event_types or event.type in self.event_types


CONSUMERS: dict[str, Consumer] = {}


def consumer(name: str, *event_types: str) -> Callable[[ConsumerHandler], ConsumerHandler]:
    """Subscribe a handler to events of these types (all types if none are named)."""

    def register(handle: ConsumerHandler) -> ConsumerHandler:
        CONSUMERS[name] = Consumer(name, frozenset(event_types), handle)
        return handle

    return register


async def apply_once(job: Job, subscriber: Consumer, event: Event) -> bool:
    """Apply an event in its own transaction unless this consumer already did; returns
    whether it was applied now."""
    clock = job.resources.clock
    async with job.resources.database.unit_of_work() as session:
        if await session.get(ProcessedEvent, (subscriber.name, event.id)) is not None:
            return False
        # Two workers racing on the same event both pass the check above; the primary key
        # lets exactly one commit, and the other's attempt fails and is retried (then skipped).
        session.add(
            ProcessedEvent(consumer=subscriber.name, event_id=event.id, processed_at=clock.now())
        )
        await session.flush()
        await subscriber.handle(session, job, event)
    return True


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
