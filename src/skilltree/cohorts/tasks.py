"""Background work of cohorts: the feed projection as an event consumer, and due-date
reminders as a cron job.

The web process projects events into the feed right after its commit (realtime/live.py); this
consumer projects them again from the outbox, so a line is written even when that process
died first. Both go through `service.project`, which writes each line at most once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.cohorts import service
from skilltree.orgs import service as orgs
from skilltree.platform import emails
from skilltree.platform.broadcast import user_channel
from skilltree.platform.events import Event, consumer
from skilltree.platform.mail import SEND_TASK
from skilltree.platform.queue import outbox
from skilltree.platform.queue.scheduler import cron_task
from skilltree.platform.queue.tasks import Job, Payload

REMINDER_JOB = "cohorts.assignment-reminders"
# Reminded once, about a day before the due date.
REMINDER_HORIZON = timedelta(hours=24)


@consumer("cohorts.feed", *sorted(service.FEED_EVENTS))
async def project_into_feed(session: AsyncSession, job: Job, event: Event) -> None:
    await service.project(session, event, job.resources.clock.now())


@cron_task(REMINDER_JOB, "15 * * * *")  # hourly
async def assignment_reminders(job: Job, payload: Payload) -> None:
    resources = job.resources
    now = resources.clock.now()
    async with resources.database.unit_of_work() as session:
        reminders = await service.claim_reminders(session, now, REMINDER_HORIZON)
        emails_of: dict[str, dict[int, str]] = {}
        for reminder in reminders:
            if reminder.org not in emails_of:
                member = await orgs.member_infos_by_slug(session, reminder.org)
                emails_of[reminder.org] = {info.user_id: info.email for info in member}
            address = emails_of[reminder.org].get(reminder.user_id)
            if address is None:
                continue
            message = emails.render(
                "assignment_reminder",
                to=address,
                org=reminder.org,
                roadmap_title=reminder.roadmap_title,
                due=reminder.due_at.strftime("%Y-%m-%d %H:%M UTC"),
                roadmap_url=f"{resources.settings.mail.public_url}/roadmaps/{reminder.roadmap}",
            )
            outbox.enqueue(session, SEND_TASK, message.to_payload(), now=now)
    for reminder in reminders:
        await resources.broadcaster.publish(
            user_channel(reminder.user_id),
            {
                "kind": "assignment.reminder",
                "occurred_at": now.isoformat(),
                "data": {
                    "org": reminder.org,
                    "assignment_id": reminder.assignment_id,
                    "roadmap": reminder.roadmap,
                    "due_at": reminder.due_at.isoformat(),
                },
            },
        )
