"""A deleted note takes its attachments, bytes included, through the note.changed event."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from skilltree.files.tasks import NOTE_ATTACHMENTS, subscribe
from skilltree.platform import events
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from tests.files.conftest import ATTACHMENTS, png, stored_objects, upload
from tests.search.conftest import write_note
from tests.support.accounts import Browser


async def deliver_note_events(app: FastAPI) -> None:
    resources = app.state.resources
    job = Job(resources=resources, task_id="test", attempt=1, max_attempts=1)
    query = select(OutboxMessage).where(OutboxMessage.task_name == events.DELIVER_TASK)
    async with resources.database.unit_of_work() as session:
        payloads = [row.args[0] for row in (await session.scalars(query)).all()]
    for payload in payloads:
        event = events.Event.from_payload(payload)
        if NOTE_ATTACHMENTS.wants(event):
            await events.apply_once(job, NOTE_ATTACHMENTS, event)


async def test_deleting_the_note_deletes_its_attachments(
    ada: Browser, app: FastAPI, storage_dir: Path
) -> None:
    await write_note(ada, "web", "retries", "see the diagram")
    assert (await upload(ada, png())).status_code == 201
    await deliver_note_events(app)
    assert len(stored_objects(storage_dir)) == 1  # a saved note keeps its files

    await write_note(ada, "web", "retries", "")
    await deliver_note_events(app)

    assert (await ada.client.get(ATTACHMENTS)).json()["items"] == []
    assert stored_objects(storage_dir) == []


def test_the_worker_subscribes_the_clean_up_to_note_events() -> None:
    subscribe()

    assert events.CONSUMERS["files.note-attachments"] is NOTE_ATTACHMENTS
    assert NOTE_ATTACHMENTS.event_types == {"note.changed"}
