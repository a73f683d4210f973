"""Files' background work: a deleted note's attachments leave storage with it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files import service
from skilltree.files.storage import storage_for
from skilltree.platform import events
from skilltree.platform.queue.tasks import Job
from skilltree.progress import service as progress


async def _on_note_changed(session: AsyncSession, job: Job, event: events.Event) -> None:
    storage = storage_for(job.resources.settings.files)
    await service.on_note_changed(session, storage, event)


NOTE_ATTACHMENTS = events.Consumer(
    "files.note-attachments", frozenset({progress.NOTE_CHANGED}), _on_note_changed
)


def subscribe() -> None:
    """Subscribe the clean-up to note events; the worker calls this when it is built."""
    events.CONSUMERS[NOTE_ATTACHMENTS.name] = NOTE_ATTACHMENTS
