"""A learner's own notes and links on a topic: private, keyed to the topic id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.platform.cache import stale_on_commit
from skilltree.platform.models import utc_now
from skilltree.progress import repository
from skilltree.progress.errors import NoteTooLarge, ResourceNotFound, TooManyResources
from skilltree.progress.models import PersonalResource, TopicNote
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.policies import Viewer

MAX_RESOURCES_PER_TOPIC = 50

# Domain events of a note or resource write, in its transaction; they name what changed (never
# its text, which stays in the learner's rows), and consumers re-read the current state.
NOTE_CHANGED = "note.changed"
RESOURCE_CHANGED = "resource.changed"


@dataclass(frozen=True)
class NoteView:
    markdown: str
    html: str
    updated_at: datetime | None

    @property
    def stored(self) -> bool:
        """False for the blank page every topic shows before a note is written."""
        return self.updated_at is not None


@dataclass(frozen=True, slots=True)
class Resource:
    """A link a learner keeps on a topic."""

    id: int
    topic_id: int
    title: str
    url: str
    created_at: datetime

    @classmethod
    def of(cls, row: PersonalResource) -> Resource:
        return cls(row.id, row.topic_id, row.title, row.url, row.created_at)


@dataclass(frozen=True)
class SavedNote:
    note: NoteView
    created: bool  # no note was stored before this save


# Sees the note as it is before a save changes it, and raises to refuse the save.
NoteCheck = Callable[[NoteView], None]


def _no_check(_current: NoteView) -> None:
    return None


async def get_note(
    session: AsyncSession, user_id: int, viewer: Viewer, slug: str, topic_slug: str
) -> NoteView:
    """The note, or an empty one: every topic has a (possibly blank) page for notes."""
    topic_id = await _topic_id(session, viewer, slug, topic_slug)
    note = await repository.note(session, user_id, topic_id)
    return _view(note)


async def note_on(session: AsyncSession, user_id: int, topic_id: int) -> NoteView:
    """`get_note` for a topic the caller already found through the roadmap's access rule."""
    return _view(await repository.note(session, user_id, topic_id))


async def resources_on(session: AsyncSession, user_id: int, topic_id: int) -> list[Resource]:
    """`list_resources` for a topic the caller already found through the access rule."""
    return [Resource.of(row) for row in await repository.resources(session, user_id, topic_id)]


async def save_note(
    session: AsyncSession,
    user_id: int,
    viewer: Viewer,
    slug: str,
    topic_slug: str,
    *,
    markdown: str,
    max_chars: int,
    now: datetime,
    check: NoteCheck = _no_check,
) -> SavedNote:
    """Replace the note; a blank one deletes it.

    `check` (optimistic concurrency, say) sees the stored note under the learner's lock, so no
    other save of theirs can slip in between the check and the write.
    """
    if len(markdown) > max_chars:
        raise NoteTooLarge(max_chars)
    topic_id = await _topic_id(session, viewer, slug, topic_slug)
    await repository.lock_learner(session, user_id)
    note = await repository.note(session, user_id, topic_id)
    check(_view(note))
    if not markdown.strip():
        if note is not None:
            await repository.delete_note(session, user_id, topic_id)
            _emit_note_changed(session, user_id, topic_id, now)
        return SavedNote(NoteView("", "", None), created=False)
    # markdown-it loads with the first note saved, not in every worker (decision 0062).
    from skilltree.progress.rendering import render_note

    html = render_note(markdown)
    created = note is None
    if note is None:
        note = TopicNote(
            user_id=user_id, topic_id=topic_id, markdown=markdown, html=html, updated_at=now
        )
        repository.add(session, note)
    else:
        note.markdown, note.html, note.updated_at = markdown, html, now
    await repository.flush(session)
    _emit_note_changed(session, user_id, topic_id, now)
    return SavedNote(_view(note), created)


async def list_resources(
    session: AsyncSession, user_id: int, viewer: Viewer, slug: str, topic_slug: str
) -> list[Resource]:
    topic_id = await _topic_id(session, viewer, slug, topic_slug)
    return [Resource.of(row) for row in await repository.resources(session, user_id, topic_id)]


async def add_resource(
    session: AsyncSession,
    user_id: int,
    viewer: Viewer,
    slug: str,
    topic_slug: str,
    *,
    title: str,
    url: str,
    now: datetime,
) -> Resource:
    topic_id = await _topic_id(session, viewer, slug, topic_slug)
    if len(await repository.resources(session, user_id, topic_id)) >= MAX_RESOURCES_PER_TOPIC:
        raise TooManyResources(MAX_RESOURCES_PER_TOPIC)
    resource = PersonalResource(
        user_id=user_id, topic_id=topic_id, title=title, url=url, created_at=now
    )
    repository.add(session, resource)
    await repository.flush(session)
    _emit_resource_changed(session, resource.id, user_id, topic_id, now)
    return Resource.of(resource)


async def delete_resource(
    session: AsyncSession,
    user_id: int,
    viewer: Viewer,
    slug: str,
    topic_slug: str,
    resource_id: int,
) -> None:
    topic_id = await _topic_id(session, viewer, slug, topic_slug)
    if not await repository.delete_resource(session, user_id, topic_id, resource_id):
        raise ResourceNotFound(resource_id)
    _emit_resource_changed(session, resource_id, user_id, topic_id, utc_now())


async def _topic_id(session: AsyncSession, viewer: Viewer, slug: str, topic_slug: str) -> int:
    view = await roadmaps.get_topic(session, slug, topic_slug, viewer)
    return view.topic.id


def cache_namespace(user_id: int) -> str:
    """Named by cached data that shows the learner's notes or links (a topic page kept
    rendered, web/ready_pages.py); every write of either marks it stale."""
    return f"notes:{user_id}"


def _view(note: TopicNote | None) -> NoteView:
    if note is None:
        return NoteView("", "", None)
    return NoteView(note.markdown, note.html, note.updated_at)


def _emit_note_changed(session: AsyncSession, user_id: int, topic_id: int, at: datetime) -> None:
    stale_on_commit(session, cache_namespace(user_id))
    events.emit(session, NOTE_CHANGED, at=at, data={"user_id": user_id, "topic_id": topic_id})


def _emit_resource_changed(
    session: AsyncSession, resource_id: int, user_id: int, topic_id: int, at: datetime
) -> None:
    stale_on_commit(session, cache_namespace(user_id))
    events.emit(
        session,
        RESOURCE_CHANGED,
        at=at,
        data={"resource_id": resource_id, "user_id": user_id, "topic_id": topic_id},
    )
