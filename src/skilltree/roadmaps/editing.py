"""Custom roadmaps: create, rename, add / move / rename / delete topics, fork.

Every edit changes rows in place, so a topic keeps its id (`topics.id`) through renames, moves
and re-imports — and with it everything keyed to that id, such as learners' progress. Only
deleting a topic (or its ancestor) ends its id.

Every edit bumps the roadmap's version and content hash. Callers pass slugs and the editor and
get read models back; the rows stay in here. A route checks the client's If-Match against what
`editable_roadmap` or `editable_topic` returns: both lock the roadmap's row until the unit of
work ends, so the edit that follows applies to the state the check saw, and two concurrent
editors cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.identity import MAX_SLUG_LENGTH
from skilltree.platform.cache import stale_on_commit
from skilltree.platform.clock import Clock
from skilltree.roadmaps import repository
from skilltree.roadmaps.document import RoadmapDoc
from skilltree.roadmaps.errors import (
    InvalidMove,
    RoadmapSlugTaken,
    TopicNotFound,
    TopicSlugTaken,
)
from skilltree.roadmaps.importing.text import slugify
from skilltree.roadmaps.models import Roadmap, Topic
from skilltree.roadmaps.planning import content_hash, plan_import
from skilltree.roadmaps.policies import Viewer, Visibility
from skilltree.roadmaps.read_models import (
    RoadmapListing,
    RoadmapRef,
    TopicDetail,
    TopicView,
    nest,
)
from skilltree.roadmaps.service import (
    CONCEPTS_CACHE_NAMESPACE,
    RoadmapSource,
    build_document,
    cache_namespace,
    topic_view_of,
)
from skilltree.roadmaps.storing import apply_document, editable_row, emit_changed, roadmap_row

# A field left out of a change request is kept as it is.
KEEP: Any = object()


@dataclass(frozen=True)
class Editor:
    """Who edits (as whom they see and may change roadmaps), and the clock stamping it."""

    viewer: Viewer
    clock: Clock


@dataclass(frozen=True)
class Access:
    visibility: Visibility
    org_id: int | None = None


@dataclass(frozen=True)
class RoadmapChanges:
    title: str | None = None
    description: str | None = None
    access: Access | None = None


@dataclass(frozen=True)
class NewTopic:
    title: str
    slug: str | None = None
    parent: str | None = None  # the parent's slug; None for a section (top level)
    position: int | None = None  # among its siblings, 0-based; None appends
    summary: str = ""
    why: str = ""
    level: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicChanges:
    """Each field is KEEP unless the client sent it; parent=None moves to the top level."""

    title: Any = KEEP
    slug: Any = KEEP
    summary: Any = KEEP
    why: Any = KEEP
    level: Any = KEEP
    tags: Any = KEEP
    parent: Any = KEEP
    position: Any = KEEP


async def create_roadmap(
    session: AsyncSession,
    editor: Editor,
    *,
    slug: str,
    title: str,
    description: str,
    access: Access,
) -> RoadmapListing:
    """An empty roadmap owned by the caller."""
    document = RoadmapDoc(slug=slug, title=title, description=description)
    return await _new_roadmap(session, editor, document, "custom", access, forked_from=None)


async def fork_roadmap(
    session: AsyncSession,
    editor: Editor,
    source_slug: str,
    *,
    slug: str,
    title: str | None,
    access: Access,
) -> RoadmapListing:
    """A copy of any roadmap the caller can see, owned by the caller (private by default)."""
    source = await roadmap_row(session, source_slug, editor.viewer)
    topics = [TopicDetail.of(row) for row in await repository.load_topics(session, source.id)]
    document = build_document(RoadmapRef.of(source), nest(topics)).model_copy(
        update={"slug": slug, "title": title or source.title}
    )
    return await _new_roadmap(session, editor, document, "fork", access, forked_from=source)


async def _new_roadmap(
    session: AsyncSession,
    editor: Editor,
    document: RoadmapDoc,
    source: RoadmapSource,
    access: Access,
    forked_from: Roadmap | None,
) -> RoadmapListing:
    assert document.slug is not None
    if await repository.slug_taken(session, document.slug):
        raise RoadmapSlugTaken(document.slug)
    now = editor.clock.now()
    try:
        plan = plan_import([], document)
        roadmap = await apply_document(session, None, [], document, plan, source=source, now=now)
    except IntegrityError as error:  # created concurrently under the same slug
        raise RoadmapSlugTaken(document.slug) from error
    roadmap.owner_id = editor.viewer.user_id
    roadmap.visibility = access.visibility
    roadmap.org_id = access.org_id
    roadmap.forked_from_id = forked_from.id if forked_from else None
    await repository.flush(session)
    # A slug can be taken again once its roadmap went with its owner or organisation: what
    # was cached under it is stale.
    stale_on_commit(session, cache_namespace(roadmap.slug))
    emit_changed(session, roadmap, now)
    return RoadmapListing(
        RoadmapRef.of(roadmap), await repository.count_topics(session, roadmap.id)
    )


async def editable_roadmap(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapListing:
    """The roadmap as it is before an edit, its row locked until the unit of work ends: 404 if
    unseen, 403 if the viewer may not edit it. What an If-Match is checked against."""
    roadmap = await editable_row(session, slug, viewer)
    return RoadmapListing(
        RoadmapRef.of(roadmap), await repository.count_topics(session, roadmap.id)
    )


async def editable_topic(
    session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer
) -> TopicView:
    """A topic as it is before an edit, its roadmap's row locked (see `editable_roadmap`)."""
    roadmap = await editable_row(session, slug, viewer)
    return _view_of(roadmap, await repository.load_topics(session, roadmap.id), topic_slug)


async def update_roadmap(
    session: AsyncSession, editor: Editor, slug: str, changes: RoadmapChanges
) -> RoadmapListing:
    roadmap = await editable_row(session, slug, editor.viewer)
    if changes != RoadmapChanges():  # an empty PATCH changes nothing, not even the version
        _change_roadmap(roadmap, changes)
        await _touch(session, editor, roadmap)
    return RoadmapListing(
        RoadmapRef.of(roadmap), await repository.count_topics(session, roadmap.id)
    )


def _change_roadmap(roadmap: Roadmap, changes: RoadmapChanges) -> None:
    if changes.title is not None:
        roadmap.title = changes.title
    if changes.description is not None:
        roadmap.description = changes.description
    if changes.access is not None:
        roadmap.visibility = changes.access.visibility
        roadmap.org_id = changes.access.org_id


async def add_topic(session: AsyncSession, editor: Editor, slug: str, new: NewTopic) -> TopicView:
    roadmap = await editable_row(session, slug, editor.viewer)
    topics = list(await repository.load_topics(session, roadmap.id))
    slug = new.slug or _free_slug(slugify(new.title), topics)
    if any(topic.slug == slug for topic in topics):
        raise TopicSlugTaken(roadmap.slug, slug)
    parent = _parent(roadmap, topics, new.parent)
    siblings = _children(topics, parent.id if parent else None)
    now = editor.clock.now()
    topic = Topic(
        roadmap_id=roadmap.id,
        parent_id=parent.id if parent else None,
        position=len(siblings),
        slug=slug,
        title=new.title,
        summary=new.summary,
        why=new.why,
        level=new.level,
        tags=list(new.tags),
        seeds=[],
        aliases=[],
        resources=[],
        implemented_in=[],
        created_at=now,
        updated_at=now,
    )
    repository.add(session, topic)
    _place(topic, siblings, new.position)
    await repository.flush(session)
    topics.append(topic)
    await _touch(session, editor, roadmap, topics)
    return _view_of(roadmap, topics, topic.slug)


async def update_topic(
    session: AsyncSession, editor: Editor, slug: str, topic_slug: str, changes: TopicChanges
) -> TopicView:
    """Rename, re-slug, re-describe and/or move a topic; its id never changes."""
    roadmap = await editable_row(session, slug, editor.viewer)
    topics = list(await repository.load_topics(session, roadmap.id))
    topic = _find(roadmap, topics, topic_slug)
    if changes == TopicChanges():
        return _view_of(roadmap, topics, topic.slug)
    if changes.slug is not KEEP and changes.slug != topic.slug:
        if any(other.slug == changes.slug for other in topics):
            raise TopicSlugTaken(roadmap.slug, changes.slug)
        topic.slug = changes.slug
    for name in ("title", "summary", "why", "level", "tags"):
        value = getattr(changes, name)
        if value is not KEEP:
            setattr(topic, name, list(value) if name == "tags" else value)
    if changes.parent is not KEEP or changes.position is not KEEP:
        _move(roadmap, topics, topic, changes)
    topic.updated_at = editor.clock.now()
    await repository.flush(session)
    await _touch(session, editor, roadmap, topics)
    return _view_of(roadmap, topics, topic.slug)


async def delete_topic(session: AsyncSession, editor: Editor, slug: str, topic_slug: str) -> None:
    """Delete a topic and everything below it; its siblings close the gap."""
    roadmap = await editable_row(session, slug, editor.viewer)
    topics = list(await repository.load_topics(session, roadmap.id))
    topic = _find(roadmap, topics, topic_slug)
    doomed = {topic.id} | _descendant_ids(topics, topic.id)
    remaining = [other for other in topics if other.id not in doomed]
    _renumber(_children(remaining, topic.parent_id))
    await repository.flush(session)
    await repository.delete_topics(session, sorted(doomed))
    for gone in (other for other in topics if other.id in doomed):
        session.expunge(gone)  # deleted by SQL above; the session must not flush them again
    # Their progress went with them, which concept-shared summaries elsewhere may have counted.
    stale_on_commit(session, CONCEPTS_CACHE_NAMESPACE)
    await _touch(session, editor, roadmap, remaining)


def _view_of(roadmap: Roadmap, topics: Sequence[Topic], topic_slug: str) -> TopicView:
    details = [TopicDetail.of(topic) for topic in topics]
    return topic_view_of(RoadmapRef.of(roadmap), details, topic_slug)


def _move(roadmap: Roadmap, topics: list[Topic], topic: Topic, changes: TopicChanges) -> None:
    if changes.parent is KEEP:
        new_parent_id = topic.parent_id
    else:
        parent = _parent(roadmap, topics, changes.parent)
        if parent is not None and (
            parent.id == topic.id or parent.id in _descendant_ids(topics, topic.id)
        ):
            raise InvalidMove(
                f"{topic.slug!r} cannot move under itself or one of its own subtopics.",
                field="parent",
            )
        new_parent_id = parent.id if parent else None
    old_siblings = [t for t in _children(topics, topic.parent_id) if t.id != topic.id]
    _renumber(old_siblings)
    topic.parent_id = new_parent_id
    new_siblings = [t for t in _children(topics, new_parent_id) if t.id != topic.id]
    position = None if changes.position is KEEP else changes.position
    _place(topic, new_siblings, position)


def _place(topic: Topic, siblings: list[Topic], position: int | None) -> None:
    """Insert topic among siblings (ordered, without it) at position, clamped; renumber all."""
    index = len(siblings) if position is None else min(max(position, 0), len(siblings))
    _renumber([*siblings[:index], topic, *siblings[index:]])


def _renumber(ordered: Sequence[Topic]) -> None:
    for position, topic in enumerate(ordered):
        if topic.position != position:
            topic.position = position


def _children(topics: Sequence[Topic], parent_id: int | None) -> list[Topic]:
    return sorted((t for t in topics if t.parent_id == parent_id), key=lambda t: t.position)


def _descendant_ids(topics: Sequence[Topic], topic_id: int) -> set[int]:
    found: set[int] = set()
    frontier = [topic_id]
    while frontier:
        children = [t.id for t in topics if t.parent_id in frontier]
        found.update(children)
        frontier = children
    return found


def _find(roadmap: Roadmap, topics: Sequence[Topic], slug: str) -> Topic:
    topic = next((t for t in topics if t.slug == slug), None)
    if topic is None:
        raise TopicNotFound(roadmap.slug, slug)
    return topic


def _parent(roadmap: Roadmap, topics: Sequence[Topic], slug: str | None) -> Topic | None:
    if slug is None:
        return None
    parent = next((t for t in topics if t.slug == slug), None)
    if parent is None:
        raise InvalidMove(f"Roadmap {roadmap.slug!r} has no topic {slug!r}.", field="parent")
    return parent


def _free_slug(base: str, topics: Sequence[Topic]) -> str:
    taken = {topic.slug for topic in topics}
    candidate, number = base, 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate = base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix
        number += 1
    return candidate


async def _touch(
    session: AsyncSession, editor: Editor, roadmap: Roadmap, topics: Sequence[Topic] | None = None
) -> None:
    """Record that the roadmap changed: a new version, content hash and timestamp (the
    editor's clock's), and its cached representations stale once this commits."""
    if topics is None:
        topics = await repository.load_topics(session, roadmap.id)
    ordered = sorted(topics, key=lambda t: (t.parent_id is not None, t.parent_id or 0, t.position))
    details = [TopicDetail.of(topic) for topic in ordered]
    document = build_document(RoadmapRef.of(roadmap), nest(details))
    now = editor.clock.now()
    roadmap.content_hash = content_hash(document)
    roadmap.version += 1
    roadmap.updated_at = now
    stale_on_commit(session, cache_namespace(roadmap.slug))
    await repository.flush(session)
    emit_changed(session, roadmap, now)
