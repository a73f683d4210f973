"""Tables of the background machinery: the database broker's queue, the transactional outbox,
the dead-letter queue, consumers' dedupe marks and the scheduler's claimed ticks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, Json, UtcDateTime


class QueuedTask(Base):
    """A message of the database broker (the embedded default): ready once `available_at`
    passes, hidden while a worker holds its lease, deleted when that worker acknowledges it."""

    __tablename__ = "queued_tasks"
    __table_args__ = (Index("ix_queued_tasks_queue_available_at", "queue", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue: Mapped[str] = mapped_column(String(100))
    task_id: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str] = mapped_column(String(200))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set while a worker runs the task; a worker killed mid-task never clears it, so the row
    # becomes claimable again once the lease runs out.
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    deliveries: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMessage(Base):
    """Work decided inside a transaction — a domain event to publish, a task to enqueue, a retry
    to run later — stored by that same transaction, and handed to the broker by the relay."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_published_at_available_at", "published_at", "available_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The task id the broker will see: consumers dedupe on it.
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    task_name: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(Json)
    labels: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # A relay claims a batch for a short while before publishing it, so two relays do not
    # publish the same rows; a relay killed mid-batch lets its claim lapse.
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DeadLetter(Base):
    """A task that failed permanently or ran out of attempts, kept for an operator to inspect,
    replay or purge."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    args: Mapped[list[Any]] = mapped_column(Json)
    labels: Mapped[dict[str, Any]] = mapped_column(Json)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProcessedEvent(Base):
    """ "Consumer X has applied event Y": written in the consumer's own transaction, so a
    redelivered event is recognised and skipped (an idempotent consumer)."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ScheduledRun(Base):
    """One tick of one cron job. The primary key is the lock: of two schedulers inserting the
    same (job, tick), exactly one succeeds and enqueues the job."""

    __tablename__ = "scheduled_runs"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    tick_at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
