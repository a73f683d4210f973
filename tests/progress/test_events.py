"""Progress reaches the rest of the system: a `topic.status_changed` event in the outbox with
every change, and the learner's week in the weekly digest e-mail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from skilltree.notifications.tasks import weekly_digest
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.events import DELIVER_TASK
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from skilltree.progress.models import ProgressEvent
from skilltree.wiring import wire_background
from tests.support.accounts import Browser, user_id
from tests.support.background import make_resources
from tests.support.progress import mark

wire_background()  # registers the digest sources, as the worker does


async def queued(database: Database, task: str) -> list[dict[str, Any]]:
    """Payloads waiting for the relay (sign-up e-mails were handed on as their requests ended)."""
    async with database.unit_of_work() as session:
        rows = select(OutboxMessage).where(
            OutboxMessage.task_name == task, OutboxMessage.published_at.is_(None)
        )
        return [row.args[0] for row in (await session.scalars(rows.order_by(OutboxMessage.id)))]


async def status_changes(database: Database) -> list[dict[str, Any]]:
    events = await queued(database, DELIVER_TASK)
    return [event for event in events if event["type"] == "topic.status_changed"]


async def test_a_status_change_is_an_event_in_the_same_transaction(
    ada: Browser, database: Database
) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "done")

    changes = [
        e for e in await queued(database, DELIVER_TASK) if e["type"] == "topic.status_changed"
    ]

    assert [
        (e["data"]["roadmap"], e["data"]["topic"], e["data"]["from"], e["data"]["to"])
        for e in changes
    ] == [
        ("web", "etags", None, "in_progress"),
        ("web", "etags", "in_progress", "done"),
    ]


async def test_a_refused_change_emits_nothing(ada: Browser, database: Database) -> None:
    response = await mark(ada, "no-such-topic", "done")

    assert response.status_code == 404
    assert [
        e for e in await queued(database, DELIVER_TASK) if e["type"] == "topic.status_changed"
    ] == []


async def test_each_event_names_the_change_it_records_and_a_repeat_emits_none(
    ada: Browser, database: Database
) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "in_progress")  # the same again: nothing is recorded
    await mark(ada, "etags", "done")
    ada_id = await user_id(ada)

    async with database.unit_of_work() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.task_name == DELIVER_TASK)
            .order_by(OutboxMessage.id)
        )
        messages = [row for row in rows if row.args[0]["type"] == "topic.status_changed"]
        recorded = (
            await session.execute(
                select(ProgressEvent.id, ProgressEvent.from_status, ProgressEvent.to_status)
                .where(ProgressEvent.user_id == ada_id)
                .order_by(ProgressEvent.id)
            )
        ).all()

    events = [message.args[0] for message in messages]
    assert [
        (e["data"]["progress_event_id"], e["data"]["from"], e["data"]["to"]) for e in events
    ] == [tuple(row) for row in recorded]
    for message, event in zip(messages, events, strict=True):
        # One message per event, due at once, under the event's own id.
        assert message.message_id == event["id"]
        assert message.labels["attempt"] == 1
        assert message.available_at == message.created_at
        assert datetime.fromisoformat(event["occurred_at"]) == message.created_at
        assert event["org_id"] is None
        assert event["data"]["user_id"] == ada_id


async def test_the_weekly_digest_lists_what_was_finished_that_week(
    ada: Browser, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    await mark(ada, "indexes", "done")
    clock.advance(minutes=5)
    await mark(ada, "etags", "done")
    await mark(ada, "status-codes", "in_progress")  # not finished: not listed
    resources, _queue = make_resources(settings, database, clock)
    tick = clock.now() + timedelta(days=1)

    await weekly_digest(Job(resources, "tick", 1, 5), {"tick": tick.isoformat()})

    [digest] = await queued(database, "mail.send")
    assert digest["subject"] == "Your week on skilltree"
    assert "Web: 2 done — Indexes, ETags" in digest["text"]


async def test_a_week_without_progress_sends_no_digest(
    ada: Browser, settings: Settings, database: Database, clock: FrozenClock
) -> None:

    await mark(ada, "etags", "done")
    resources, _queue = make_resources(settings, database, clock)
    a_month_later = clock.now() + timedelta(days=30)

    await weekly_digest(Job(resources, "tick", 1, 5), {"tick": a_month_later.isoformat()})

    assert await queued(database, "mail.send") == []
