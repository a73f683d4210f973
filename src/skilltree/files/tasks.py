"""Files' background work: a deleted note's attachments leave storage with it, and so do
resumable uploads nobody finished; images get their smaller copies (avatar sizes, thumbnails)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files import images, resumable, service
from skilltree.files.storage import storage_for
from skilltree.platform import events
from skilltree.platform.queue.retry import PermanentFailure, RetryPolicy
from skilltree.platform.queue.scheduler import cron_task
from skilltree.platform.queue.tasks import Job, Payload, task
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


@task(
    service.VARIANTS_TASK,
    # Storage may be briefly away (an S3 hiccup): try again, spread out; the work is idempotent.
    retry=RetryPolicy(max_attempts=5, base_delay_seconds=5.0, max_delay_seconds=300.0),
    timeout_seconds=120.0,
)
async def make_image_variants(job: Job, payload: Payload) -> None:
    """An image's avatar sizes or thumbnail: Pillow, in a thread, outside any request."""
    settings = job.resources.settings.files
    storage = storage_for(settings)
    try:
        async with job.resources.database.unit_of_work() as session:
            made = await service.make_variants(
                session,
                storage,
                int(payload["file_id"]),
                str(payload["key"]),
                max_pixels=settings.image_max_pixels,
                now=job.resources.clock.now(),
            )
    except images.UnreadableImage as error:
        # Its magic bytes said image, its body does not decode: no retry will change that.
        raise PermanentFailure(f"image {payload['file_id']} cannot be decoded: {error}") from error
    log.info("files.image_variants_made", file_id=payload["file_id"], variants=made)
