"""Files' background work: a deleted note's attachments leave storage with it, and so do
resumable uploads nobody finished."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files import resumable, service
from skilltree.files.storage import storage_for
from skilltree.platform import events
from skilltree.platform.queue.scheduler import cron_task
from skilltree.platform.queue.tasks import Job, Payload
from skilltree.progress import service as progress

log = structlog.get_logger(__name__)


async def _on_note_changed(session: AsyncSession, job: Job, event: events.Event) -> None:
    storage = storage_for(job.resources.settings.files)
    await service.on_note_changed(session, storage, event)


NOTE_ATTACHMENTS = events.Consumer(
    "files.note-attachments", frozenset({progress.NOTE_CHANGED}), _on_note_changed
)


def subscribe() -> None:
    """Subscribe the clean-up to note events; the worker calls this when it is built."""
    events.CONSUMERS[NOTE_ATTACHMENTS.name] = NOTE_ATTACHMENTS


@cron_task("files.expired-uploads", "*/15 * * * *")
async def delete_expired_uploads(job: Job, payload: Payload) -> None:
    """Resumable uploads past their expiry leave, partial bytes included (tus expiration)."""
    storage = storage_for(job.resources.settings.files)
    async with job.resources.database.unit_of_work() as session:
        removed = await resumable.delete_expired(session, storage, job.resources.clock.now())
    log.info("files.expired_uploads_deleted", removed=removed)
