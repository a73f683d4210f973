"""Writing roadmaps: the row-level steps that imports, creation, forks and edits share.

These take and return table rows, so they stay inside the domain: the services call them and
hand read models (read_models.py) to everyone else. No router or other domain imports this
module (`tests/roadmaps/test_read_models.py` would see the rows it returns).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.roadmaps import repository
from skilltree.roadmaps.document import RoadmapDoc
from skilltree.roadmaps.errors import RoadmapNotEditable, RoadmapNotFound
from skilltree.roadmaps.models import Roadmap, Topic
from skilltree.roadmaps.planning import ImportPlan, content_hash
from skilltree.roadmaps.policies import Viewer

# Emitted whenever a roadmap's topics or details change (import, edit, creation, fork): the
# search index re-reads the roadmap's topics when it arrives.
ROADMAP_CHANGED = "roadmap.changed"


async def roadmap_row(
    session: AsyncSession, slug: str, viewer: Viewer, *, for_update: bool = False
) -> Roadmap:
    """The roadmap's row, or RoadmapNotFound — also when it exists but the viewer may not see it."""
    roadmap = await repository.get_roadmap(session, slug, viewer, for_update=for_update)
    if roadmap is None:
        raise RoadmapNotFound(slug)
    return roadmap


async def editable_row(session: AsyncSession, slug: str, viewer: Viewer) -> Roadmap:
    """The roadmap's row, locked for this transaction so concurrent edits queue behind each
    other: 404 if the viewer cannot see it, 403 if they may not edit it."""
    roadmap = await roadmap_row(session, slug, viewer, for_update=True)
    if not viewer.can_edit(roadmap):
        raise RoadmapNotEditable(roadmap.slug)
    return roadmap


async def apply_document(
    session: AsyncSession,
    roadmap: Roadmap | None,
    existing: Sequence[Topic],
    document: RoadmapDoc,
    plan: ImportPlan,
    *,
    source: str,
    now: datetime,
) -> Roadmap:
    """Create the roadmap (when None) or bring it and its topics to what `plan` says."""
    digest = content_hash(document)
    if roadmap is None:
        roadmap = Roadmap(
            slug=document.slug,
            title=document.title,
            description=document.description,
            source=source,
            version=1,
            content_hash=digest,
            created_at=now,
            updated_at=now,
        )
        repository.add(session, roadmap)
        await repository.flush(session)
    elif roadmap.content_hash != digest or plan.has_changes:
        roadmap.title = document.title
        roadmap.description = document.description
        roadmap.version += 1
        roadmap.content_hash = digest
        roadmap.updated_at = now

    # Unchanged and updated topics can be parents of added or moved ones.
    ids = {topic.slug: topic.id for topic in existing}
    await _insert_added(session, roadmap.id, plan, ids, now)
    for update in plan.updated:
        planned = update.planned
        values = dict(planned.values, position=planned.position, updated_at=now)
        values["parent_id"] = ids[planned.parent_slug] if planned.parent_slug else None
        await repository.update_topic(session, update.topic_id, values)
    await repository.delete_topics(session, [topic.id for topic in plan.removed])
    await repository.flush(session)
    return roadmap


async def _insert_added(
    session: AsyncSession, roadmap_id: int, plan: ImportPlan, ids: dict[str, int], now: datetime
) -> None:
    """Insert new topics level by level, so every parent has its id before its children."""
    for depth in sorted({planned.depth for planned in plan.added}):
        level = [planned for planned in plan.added if planned.depth == depth]
        rows = [
            Topic(
                roadmap_id=roadmap_id,
                parent_id=ids[p.parent_slug] if p.parent_slug else None,
                position=p.position,
                slug=p.slug,
                created_at=now,
                updated_at=now,
                **p.values,
            )
            for p in level
        ]
        for row in rows:
            repository.add(session, row)
        await repository.flush(session)
        ids.update({row.slug: row.id for row in rows})


def emit_changed(session: AsyncSession, roadmap: Roadmap, now: datetime) -> None:
    events.emit(
        session,
        ROADMAP_CHANGED,
        at=now,
        data={"roadmap_id": roadmap.id, "roadmap": roadmap.slug},
    )
