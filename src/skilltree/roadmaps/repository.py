"""Every query of the roadmaps domain. Services call these; nothing else writes SQL for roadmaps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    Text,
    bindparam,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from skilltree.platform.filtering import ListQuery, order_by_clauses, where_clauses
from skilltree.roadmaps.listing import ROADMAP_LIST
from skilltree.roadmaps.models import Roadmap, RoadmapRevision, Topic
from skilltree.roadmaps.policies import Viewer, visible_to
from skilltree.roadmaps.read_models import TreeTopic


async def get_roadmap(
    session: AsyncSession, slug: str, viewer: Viewer, *, for_update: bool = False
) -> Roadmap | None:
    """The roadmap if the viewer may see it (imports look slugs up as the OPERATOR)."""
    query = select(Roadmap).where(Roadmap.slug == slug, visible_to(viewer))
    if for_update:
        # Serialises concurrent imports of one roadmap on PostgreSQL (SQLite has one writer anyway).
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def is_visible(session: AsyncSession, slug: str, viewer: Viewer) -> bool:
    """Whether the roadmap exists and the viewer may see it, without loading it: its
    visibility columns read by a statement built once (the same for every caller), and the
    viewer's rule applied to them with `Viewer.can_see`, as `topic_place` does."""
    row = (await session.execute(_VISIBILITY, {"slug": slug})).first()
    return row is not None and viewer.can_see(_Shared(row[0], row[1], row[2], row[3]))


async def roadmap_ids_of_topics(session: AsyncSession, topic_ids: set[int]) -> dict[int, int]:
    query = select(Topic.id, Topic.roadmap_id).where(Topic.id.in_(sorted(topic_ids)))
    rows = (await session.execute(query)).all()
    return {row[0]: row[1] for row in rows}


async def count_topics(session: AsyncSession, roadmap_id: int) -> int:
    query = select(func.count(Topic.id)).where(Topic.roadmap_id == roadmap_id)
    return (await session.execute(query)).scalar_one()


def _topics_in_tree_order(roadmap_id: int) -> Select[Topic]:
    """A roadmap's topics, grouped by parent, siblings in position order."""
    return (
        select(Topic)
        .where(Topic.roadmap_id == roadmap_id)
        .order_by(Topic.parent_id.is_not(None), Topic.parent_id, Topic.position)
    )


async def load_topics(session: AsyncSession, roadmap_id: int) -> Sequence[Topic]:
    """All topics of a roadmap, grouped by parent, siblings in position order: one query."""
    return (await session.execute(_topics_in_tree_order(roadmap_id))).scalars().all()


async def load_topics_of(session: AsyncSession, roadmap_ids: Sequence[int]) -> Sequence[Topic]:
    """The topics of several roadmaps in one query, each roadmap's in `load_topics` order."""
    query = (
        select(Topic)
        .where(Topic.roadmap_id.in_(roadmap_ids))
        .order_by(Topic.roadmap_id, Topic.parent_id.is_not(None), Topic.parent_id, Topic.position)
    )
    return (await session.execute(query)).scalars().all()


async def load_tree_topics(session: AsyncSession, roadmap_id: int) -> list[TreeTopic]:
    """The columns the tree's JSON shows, siblings in position order, as plain tuples: no ORM
    object per topic, so a tree of 10,000 topics loads in milliseconds (decision 0043).

    The table's own columns rather than the mapped attributes: SQLAlchemy then reads the rows
    as a Core result, without the ORM's loading machinery. The two JSON lists come as their
    text, and only a non-empty one is decoded (most topics have no tags and no references;
    decoding every one was a fifth of the build): `implemented` is whether the references
    list is non-empty, which needs no decoding at all when it is "[]".
    """
    topics = Topic.__table__.c
    query = select(
        topics.id,
        topics.parent_id,
        topics.slug,
        topics.title,
        topics.summary,
        topics.level,
        cast(topics.tags, Text),
        cast(topics.implemented_in, Text),
        topics.concept,
        topics.estimate_hours,
    ).where(topics.roadmap_id == roadmap_id)
    # Grouped by parent, siblings by position: the order of ix_topics_roadmap_parent_position,
    # so PostgreSQL reads the index instead of sorting (sections first is not needed here).
    query = query.order_by(topics.parent_id, topics.position)
    rows = (await session.execute(query)).all()
    return [
        TreeTopic(
            id_,
            parent,
            slug,
            title,
            summary,
            level,
            [] if tags == _EMPTY_LIST else orjson.loads(tags),
            refs != _EMPTY_LIST and bool(orjson.loads(refs)),
            concept,
            hours,
        )
        for id_, parent, slug, title, summary, level, tags, refs, concept, hours in rows
    ]


# How every backend writes an empty JSON list (PostgreSQL's jsonb prints it so too); any other
# spelling of an empty list is decoded, and still reads as empty.
_EMPTY_LIST = "[]"


async def find_topic(session: AsyncSession, roadmap_id: int, slug: str) -> Topic | None:
    """One topic by its slug: a lookup on the (roadmap_id, slug) unique index."""
    query = select(Topic).where(Topic.roadmap_id == roadmap_id, Topic.slug == slug)
    return (await session.execute(query)).scalar_one_or_none()


# Which roadmap and topic a progress write is about, built once with its parameters bound at
# execution: a Core statement on the tables' columns, so a write neither builds the expression
# nor its cache key again, nor goes through the ORM's loading. The viewer's rule is applied to
# the roadmap's visibility columns in Python (`Viewer.can_see`, the rule `visible_to` puts in
# SQL), which keeps the statement the same for every caller.
_ROADMAPS = Roadmap.__table__.c
_TOPICS = Topic.__table__.c
_TOPIC_PLACE = (
    select(
        _ROADMAPS.id,
        _ROADMAPS.visibility,
        _ROADMAPS.owner_id,
        _ROADMAPS.org_id,
        _ROADMAPS.source,
        _TOPICS.id.label("topic_id"),
    )
    .select_from(
        Roadmap.__table__.outerjoin(
            Topic.__table__,
            (_TOPICS.roadmap_id == _ROADMAPS.id) & (_TOPICS.slug == bindparam("topic_slug")),
        )
    )
    .where(_ROADMAPS.slug == bindparam("slug"))
)


_VISIBILITY = select(
    _ROADMAPS.visibility, _ROADMAPS.owner_id, _ROADMAPS.org_id, _ROADMAPS.source
).where(_ROADMAPS.slug == bindparam("slug"))


class _Shared(NamedTuple):
    """A roadmap's visibility columns, as `Viewer.can_see` reads them."""

    visibility: str
    owner_id: int | None
    org_id: int | None
    source: str


async def topic_place(
    session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer
) -> tuple[int, int | None] | None:
    """(roadmap id, topic id) in one statement: None when the viewer may not see the roadmap
    (or it does not exist), a topic id of None when the roadmap has no such topic."""
    result = await session.execute(_TOPIC_PLACE, {"slug": slug, "topic_slug": topic_slug})
    row = result.first()
    if row is None or not viewer.can_see(_Shared(row[1], row[2], row[3], row[4])):
        return None
    return (row[0], row[5])


async def load_outline(session: AsyncSession, roadmap_id: int) -> Sequence[Topic]:
    """All topics as `load_topics` returns them, with only the columns an outline shows: where
    each sits, its slug, title, summary, concept and estimate. The five JSON lists and the rest
    stay in the database; reading one of them raises instead of querying behind the caller's back.
    """
    outline = load_only(
        Topic.id,
        Topic.roadmap_id,
        Topic.parent_id,
        Topic.position,
        Topic.slug,
        Topic.title,
        Topic.summary,
        Topic.concept,
        Topic.estimate_hours,
        raiseload=True,
    )
    query = _topics_in_tree_order(roadmap_id).options(outline)
    return (await session.execute(query)).scalars().all()


def add(session: AsyncSession, row: Roadmap | Topic | RoadmapRevision) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def update_topic(session: AsyncSession, topic_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(Topic).where(Topic.id == topic_id).values(**values))


async def delete_topics(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(delete(Topic).where(Topic.id.in_(ids)))


async def topics_with_concepts(
    session: AsyncSession, concepts: Sequence[str]
) -> Sequence[tuple[int, str]]:
    """(topic id, concept) of every topic, in any roadmap, that teaches one of `concepts`."""
    if not concepts:
        return []
    query = select(Topic.id, Topic.concept).where(Topic.concept.in_(list(concepts)))
    rows = (await session.execute(query)).all()
    return [(topic_id, concept) for topic_id, concept in rows if concept is not None]


async def titles_by_roadmap(
    session: AsyncSession, topic_ids: Sequence[int]
) -> Sequence[tuple[int, str, str]]:
    """(topic id, roadmap title, topic title) for each id, ordered by roadmap title."""
    if not topic_ids:
        return []
    query = (
        select(Topic.id, Roadmap.title, Topic.title)
        .join(Roadmap, Roadmap.id == Topic.roadmap_id)
        .where(Topic.id.in_(list(topic_ids)))
        .order_by(Roadmap.title)
    )
    return [(row[0], row[1], row[2]) for row in (await session.execute(query)).all()]


# Built once: it names topics for the due list, search results and every live progress
# event, and putting it together for each call cost more CPU than running it.
_TOPIC_LABELS = (
    select(Topic.id, Roadmap.slug, Topic.slug, Topic.title)
    .join(Roadmap, Roadmap.id == Topic.roadmap_id)
    .where(Topic.id.in_(bindparam("topic_ids", expanding=True)))
)


def with_topic_labels(
    query: Select[*tuple[Any, ...]], topic_id: ColumnElement[int]
) -> Select[*tuple[Any, ...]]:
    """`query` with three columns more, the label of the topic `topic_id` names (roadmap slug,
    topic slug, title), NULL where no topic has that id. Core columns and plain outer joins:
    the statement stays a Core one when `query` is, and every backend looks each topic up by
    its primary key (a subquery on the right of a LEFT JOIN is one SQLite cannot flatten)."""
    topics, roadmaps = Topic.__table__, Roadmap.__table__
    return (
        query.add_columns(roadmaps.c.slug, topics.c.slug, topics.c.title)
        .outerjoin(topics, topics.c.id == topic_id)
        .outerjoin(roadmaps, roadmaps.c.id == topics.c.roadmap_id)
    )


async def topic_labels(
    session: AsyncSession, topic_ids: Sequence[int]
) -> Sequence[tuple[int, str, str, str]]:
    """(topic id, roadmap slug, topic slug, topic title) for each id, in one query."""
    if not topic_ids:
        return []
    rows = (await session.execute(_TOPIC_LABELS, {"topic_ids": list(topic_ids)})).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def list_page(
    session: AsyncSession, viewer: Viewer, query: ListQuery, limit: int, offset: int
) -> tuple[Sequence[tuple[Roadmap, int]], int]:
    """One page of the roadmaps the viewer may see, filtered and sorted, and the total count."""
    conditions = [visible_to(viewer), *where_clauses(query, ROADMAP_LIST)]
    page = (
        select(Roadmap, _topic_count())
        .where(*conditions)
        .order_by(*order_by_clauses(query, ROADMAP_LIST))
        .limit(limit)
        .offset(offset)
    )
    total = select(func.count(Roadmap.id)).where(*conditions)
    rows = [(roadmap, count) for roadmap, count in (await session.execute(page)).all()]
    return rows, (await session.execute(total)).scalar_one()


def _topic_count() -> ScalarSelect[int]:
    return (
        select(func.count(Topic.id))
        .where(Topic.roadmap_id == Roadmap.id)
        .correlate(Roadmap)
        .scalar_subquery()
    )


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    query = select(Roadmap.id).where(Roadmap.slug == slug)
    return (await session.execute(query)).first() is not None


async def latest_revision(session: AsyncSession, roadmap_id: int) -> RoadmapRevision | None:
    query = (
        select(RoadmapRevision)
        .where(RoadmapRevision.roadmap_id == roadmap_id)
        .order_by(RoadmapRevision.number.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_revisions(session: AsyncSession, roadmap_id: int) -> Sequence[RoadmapRevision]:
    query = (
        select(RoadmapRevision)
        .where(RoadmapRevision.roadmap_id == roadmap_id)
        .order_by(RoadmapRevision.number.desc())
    )
    return (await session.execute(query)).scalars().all()


async def get_revision(
    session: AsyncSession, roadmap_id: int, number: int
) -> RoadmapRevision | None:
    query = select(RoadmapRevision).where(
        RoadmapRevision.roadmap_id == roadmap_id, RoadmapRevision.number == number
    )
    return (await session.execute(query)).scalar_one_or_none()


def visible_ids(viewer: Viewer, slug: str | None) -> Select[int]:
    query = select(Roadmap.id).where(visible_to(viewer))
    if slug is not None:
        query = query.where(Roadmap.slug == slug)
    return query


async def all_ids(session: AsyncSession) -> Sequence[int]:
    return (await session.execute(select(Roadmap.id).order_by(Roadmap.id))).scalars().all()


async def roadmaps_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Roadmap]:
    query = select(Roadmap).where(Roadmap.id.in_(list(ids))).order_by(Roadmap.title, Roadmap.id)
    return (await session.execute(query)).scalars().all()


async def roadmaps_of_org(session: AsyncSession, org_id: int) -> Sequence[Roadmap]:
    query = select(Roadmap).where(Roadmap.org_id == org_id).order_by(Roadmap.title, Roadmap.id)
    return (await session.execute(query)).scalars().all()


async def delete_private_roadmaps_of(session: AsyncSession, owner_id: int) -> int:
    """The owner's private roadmaps, with their topics (ON DELETE CASCADE); how many."""
    query = delete(Roadmap).where(Roadmap.owner_id == owner_id, Roadmap.visibility == "private")
    result = await session.execute(query)
    return int(result.rowcount)  # type: ignore[attr-defined]
