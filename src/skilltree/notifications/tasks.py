"""The weekly digest and daily review reminders, as cron jobs with hooks for their content.

Other domains supply the content: progress digest sections, reviews how many topics are due
per person; skilltree/wiring.py connects them. With nothing registered, nobody gets an empty e-mail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.notifications import service
from skilltree.platform import emails
from skilltree.platform.broadcast import user_channel
from skilltree.platform.mail import SEND_TASK
from skilltree.platform.queue import outbox
from skilltree.platform.queue.scheduler import cron_task
from skilltree.platform.queue.tasks import Job, Payload

DIGEST_JOB = "notifications.weekly-digest"
REMINDER_JOB = "notifications.review-reminders"


@dataclass(frozen=True)
class DigestSection:
    title: str
    lines: list[str]


# (session, user id, week start, week end) -> a section of that person's digest, or None.
DigestSource = Callable[[AsyncSession, int, datetime, datetime], Awaitable[DigestSection | None]]
DIGEST_SOURCES: dict[str, DigestSource] = {}

# (session, now) -> {user id: topics due for review}.
ReminderSource = Callable[[AsyncSession, datetime], Awaitable[dict[int, int]]]
REMINDER_SOURCES: dict[str, ReminderSource] = {}


def add_digest_source(name: str, source: DigestSource) -> None:
    """A section of the weekly digest, supplied by another domain (see skilltree/wiring.py)."""
    DIGEST_SOURCES[name] = source


def add_reminder_source(name: str, source: ReminderSource) -> None:
    """Due counts for the daily review reminder, supplied by another domain."""
    REMINDER_SOURCES[name] = source


@cron_task(DIGEST_JOB, "0 8 * * 1")  # Mondays 08:00 UTC
async def weekly_digest(job: Job, payload: Payload) -> None:
    resources = job.resources
    until = datetime.fromisoformat(str(payload["tick"]))
    since = until - timedelta(days=7)
    async with resources.database.unit_of_work() as session:
        for person in await service.recipients(session, "weekly_digest"):
            user_id = person.user_id
            sections = [
                section
                for source in DIGEST_SOURCES.values()
                if (section := await source(session, user_id, since, until)) is not None
                and section.lines
            ]
            if not sections:
                continue
            message = emails.render(
                "weekly_digest",
                to=person.email,
                name=person.display_name,
                sections=sections,
                unsubscribe_url=_unsubscribe(job, user_id, "weekly_digest"),
            )
            outbox.enqueue(session, SEND_TASK, message.to_payload(), now=resources.clock.now())


@cron_task(REMINDER_JOB, "0 7 * * *")  # daily 07:00 UTC
async def review_reminders(job: Job, payload: Payload) -> None:
    resources = job.resources
    now = resources.clock.now()
    async with resources.database.unit_of_work() as session:
        due: dict[int, int] = {}
        for source in REMINDER_SOURCES.values():
            for user_id, count in (await source(session, now)).items():
                due[user_id] = due.get(user_id, 0) + count
        for person in await service.recipients(session, "review_reminders"):
            user_id = person.user_id
            if due.get(user_id, 0) <= 0:
                continue
            message = emails.render(
                "review_reminder",
                to=person.email,
                due=due[user_id],
                review_url=f"{resources.settings.mail.public_url}/reviews",
                unsubscribe_url=_unsubscribe(job, user_id, "review_reminders"),
            )
            outbox.enqueue(session, SEND_TASK, message.to_payload(), now=now)
    await _push_due_reviews(job, due, now)


async def _push_due_reviews(job: Job, due: dict[int, int], now: datetime) -> None:
    """Everyone with reviews due hears it on their own live stream (GET /v1/me/stream), whether
    or not they take the e-mail: a stream is only open while they are looking."""
    for user_id, count in due.items():
        if count > 0:
            await job.resources.broadcaster.publish(
                user_channel(user_id),
                {"kind": "reviews.due", "occurred_at": now.isoformat(), "data": {"due": count}},
            )


def _unsubscribe(job: Job, user_id: int, topic: str) -> str:
    settings = job.resources.settings
    return service.unsubscribe_url(
        settings.mail.public_url, settings.app.secret_key, user_id, topic
    )
