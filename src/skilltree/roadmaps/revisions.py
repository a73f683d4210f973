"""Revisions: immutable, numbered snapshots of a roadmap that its editors publish.

A revision stores the whole document, so "revision 3" means the same thing forever, whatever is
edited afterwards; the database refuses updates to it (see migration 0013).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.platform.cache import stale_on_commit
from skilltree.roadmaps import repository
from skilltree.roadmaps.editing import Editor
from skilltree.roadmaps.errors import NothingToPublish, RevisionNotFound
from skilltree.roadmaps.models import RoadmapRevision
from skilltree.roadmaps.planning import content_hash
from skilltree.roadmaps.policies import Viewer
from skilltree.roadmaps.read_models import RoadmapRef, TopicDetail, nest
from skilltree.roadmaps.service import build_document, cache_namespace, require_roadmap
from skilltree.roadmaps.storing import editable_row

ROADMAP_PUBLISHED = "roadmap.published"


@dataclass(frozen=True, slots=True)
class Revision:
    """A published revision as routes show it; `roadmap` names the roadmap it belongs to."""

    roadmap: RoadmapRef
    number: int
    content_hash: str
    note: str
    published_at: datetime
    document: dict[str, Any]

    @classmethod
    def of(cls, roadmap: RoadmapRef, row: RoadmapRevision) -> Revision:
        return cls(roadmap, row.number, row.content_hash, row.note, row.published_at, row.document)


async def publish(session: AsyncSession, editor: Editor, slug: str, note: str) -> Revision:
    """Snapshot the roadmap as its next revision; refused if nothing changed since the last.

    The roadmap's row is locked until the unit of work ends, so numbers never race.
    """
    roadmap = await editable_row(session, slug, editor.viewer)
    topics = [TopicDetail.of(row) for row in await repository.load_topics(session, roadmap.id)]
    document = build_document(RoadmapRef.of(roadmap), nest(topics))
    digest = content_hash(document)
    latest = await repository.latest_revision(session, roadmap.id)
    if latest is not None and latest.content_hash == digest:
        raise NothingToPublish(roadmap.slug, latest.number)
    revision = RoadmapRevision(
        roadmap_id=roadmap.id,
        number=latest.number + 1 if latest else 1,
        content_hash=digest,
        document=document.model_dump(mode="json", exclude_defaults=True),
        note=note,
        published_by=editor.viewer.user_id,
        published_at=editor.clock.now(),
    )
    repository.add(session, revision)
    await repository.flush(session)
    events.emit(
        session,
        ROADMAP_PUBLISHED,
        at=revision.published_at,
        data={"roadmap": roadmap.slug, "revision": revision.number, "note": note},
        org_id=roadmap.org_id,
    )
    # What readers are served is recomputed from the published state.
    stale_on_commit(session, cache_namespace(roadmap.slug))
    return Revision.of(RoadmapRef.of(roadmap), revision)


async def history(
    session: AsyncSession, slug: str, viewer: Viewer
) -> tuple[RoadmapRef, list[Revision]]:
    """The roadmap and its published revisions, newest first."""
    roadmap = await require_roadmap(session, slug, viewer)
    rows = await repository.list_revisions(session, roadmap.id)
    return roadmap, [Revision.of(roadmap, row) for row in rows]


async def get_revision(session: AsyncSession, slug: str, number: int, viewer: Viewer) -> Revision:
    roadmap = await require_roadmap(session, slug, viewer)
    revision = await repository.get_revision(session, roadmap.id, number)
    if revision is None:
        raise RevisionNotFound(slug, number)
    return Revision.of(roadmap, revision)
