"""The daily review reminder counts each learner's due cards."""

from __future__ import annotations

from sqlalchemy import select

from skilltree.notifications.tasks import review_reminders
from skilltree.platform.broadcast import user_channel
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from skilltree.wiring import wire_background
from tests.support.accounts import Browser, user_id
from tests.support.background import make_resources
from tests.support.progress import mark

wire_background()  # registers the reviews reminder source, as the worker does


async def reminders_queued(database: Database) -> list[dict[str, object]]:
    """E-mail waiting for the relay (the sign-up e-mails were handed on as their requests ended)."""
    async with database.unit_of_work() as session:
        mails = select(OutboxMessage).where(
            OutboxMessage.task_name == "mail.send", OutboxMessage.published_at.is_(None)
        )
        return [row.args[0] for row in (await session.scalars(mails)).all()]


async def test_a_learner_with_due_reviews_is_reminded(
    ada: Browser, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    await mark(ada, "etags", "done")
    resources, _queue = make_resources(settings, database, clock)

    await review_reminders(Job(resources, "tick", 1, 5), {"tick": clock.now().isoformat()})

    [reminder] = await reminders_queued(database)
    assert reminder["subject"] == "1 topic to review today"
    assert ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"] in reminder["headers"]


async def test_reviews_due_reach_the_learners_own_stream_even_without_the_email(
    ada: Browser, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    await mark(ada, "etags", "done")
    await ada.client.put(
        "/v1/me/notifications", json={"review_reminders": False}, headers=ada.write_headers
    )
    resources, _queue = make_resources(settings, database, clock)
    channel = user_channel(await user_id(ada))

    async with resources.broadcaster.subscribe([channel]) as stream:
        await review_reminders(Job(resources, "tick", 1, 5), {"tick": clock.now().isoformat()})
        delivery = await stream.next(wait_seconds=5)

    assert delivery is not None
    assert delivery.message["kind"] == "reviews.due"
    assert delivery.message["data"] == {"due": 1}
    assert await reminders_queued(database) == []


async def test_nobody_is_reminded_after_turning_reminders_off(
    ada: Browser, settings: Settings, database: Database, clock: FrozenClock
) -> None:

    await mark(ada, "etags", "done")
    await ada.client.put(
        "/v1/me/notifications", json={"review_reminders": False}, headers=ada.write_headers
    )
    resources, _queue = make_resources(settings, database, clock)

    await review_reminders(Job(resources, "tick", 1, 5), {"tick": clock.now().isoformat()})

    assert await reminders_queued(database) == []
