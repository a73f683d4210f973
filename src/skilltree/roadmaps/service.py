"""The rules of the roadmaps domain: reading trees, importing documents, exporting them.

No HTTP types and no SQL here: the router shapes requests and responses, the repository owns the
queries. Services flush, never commit; the caller's unit of work decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import anyio.to_thread
from sqlalchemy import ColumnElement, Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.identity import Principal
from skilltree.orgs import service as orgs
from skilltree.platform.cache import Key, stale_on_commit
from skilltree.platform.clock import Clock, SystemClock
from skilltree.platform.errors import UnprocessableContent
from skilltree.platform.filtering import ListQuery
from skilltree.roadmaps import repository
from skilltree.roadmaps.document import (
    ReferenceDoc,
    ResourceDoc,
    RoadmapDoc,
    TopicDoc,
    TopicStatus,
    iter_topics,
)
from skilltree.roadmaps.errors import (
    BuiltinRoadmapProtected,
    ConcurrentImport,
    RoadmapNotEditable,
    RoadmapNotFound,
    RoadmapSlugTaken,
    TopicNotFound,
)
from skilltree.roadmaps.importing import ImportLimits, ParsedRoadmap, detect_format, parse_roadmap
from skilltree.roadmaps.models import Roadmap
from skilltree.roadmaps.planning import ImportPlan, plan_import
from skilltree.roadmaps.policies import OPERATOR, Viewer, Visibility
from skilltree.roadmaps.read_models import (
    RoadmapListing,
    RoadmapRef,
    RoadmapTree,
    TopicDetail,
    TopicNode,
    TopicPlace,
    TopicRef,
    TopicView,
    TreeRows,
    TreeTopic,
    count_nodes,
    nest,
    walk,
)
from skilltree.roadmaps.storing import ROADMAP_CHANGED, apply_document, emit_changed, roadmap_row

__all__ = [
    "ROADMAP_CHANGED",
    "RoadmapListing",
    "RoadmapRef",
    "RoadmapTree",
    "TopicDetail",
    "TopicNode",
    "TopicPlace",
    "TopicRef",
    "TopicView",
    "TreeRows",
    "TreeTopic",
    "count_nodes",
    "topic_key",
    "tree_key",
    "walk",
]

RoadmapSource = Literal["builtin", "import", "custom", "fork"]

# Progress that is shared by concept reads topics of every roadmap, so a change to which topics
# exist or which concept they teach (an import, a deletion) makes such summaries stale.
CONCEPTS_CACHE_NAMESPACE = "concepts"


def cache_namespace(slug: str) -> str:
    """Named by every cached representation computed from this roadmap (its tree, its topics,
    progress on it); every change of the roadmap marks it stale."""
    return f"roadmap:{slug}"


def tree_key(slug: str) -> Key:
    """Where the roadmap's tree is cached, for every reader, while the roadmap is public."""
    return Key(f"roadmap:{slug}:tree", (cache_namespace(slug),))


def topic_key(slug: str, topic_slug: str) -> Key:
    """Where one of its topics is cached, for every reader, while the roadmap is public."""
    return Key(f"roadmap:{slug}:topic:{topic_slug}", (cache_namespace(slug),))


@dataclass(frozen=True)
class TopicLabel:
    """Enough to name and link a topic from another domain (a review card, a feed item)."""

    topic_id: int
    roadmap_slug: str
    slug: str
    title: str


# Stamps what the command line and direct callers import; the app passes its own clock.
SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True)
class ImportReport:
    roadmap: RoadmapRef | None  # None for a dry run of a roadmap that does not exist yet
    slug: str
    created: bool
    dry_run: bool
    plan: ImportPlan
    parsed: ParsedRoadmap


def checklist_marks(parsed: ParsedRoadmap) -> list[tuple[str, TopicStatus]]:
    """The boxes the file had ticked ([x] done, [/] in progress, [-] skipped), by topic slug:
    what an import applies to the importer's progress when asked to."""
    return [
        (topic.slug, topic.status)
        for topic, _ in iter_topics(parsed.document.topics)
        if topic.slug is not None and topic.status not in (None, "todo")
    ]


async def list_roadmaps(
    session: AsyncSession, viewer: Viewer, query: ListQuery, limit: int, offset: int
) -> tuple[list[RoadmapListing], int]:
    """One page of the roadmaps the viewer may see, and how many there are in all."""
    rows, total = await repository.list_page(session, viewer, query, limit, offset)
    return [RoadmapListing(RoadmapRef.of(roadmap), count) for roadmap, count in rows], total


async def get_roadmap(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapListing:
    return await listing_of(session, await require_roadmap(session, slug, viewer))


async def listing_of(session: AsyncSession, roadmap: RoadmapRef) -> RoadmapListing:
    return RoadmapListing(roadmap, await repository.count_topics(session, roadmap.id))


async def get_tree(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapTree[TopicDetail]:
    """The whole tree in two queries, whatever its size (roadmap row + all topics)."""
    roadmap = await require_roadmap(session, slug, viewer)
    topics = await _details(session, roadmap.id)
    return RoadmapTree(roadmap, nest(topics), len(topics))


async def tree_rows(session: AsyncSession, slug: str, viewer: Viewer) -> TreeRows:
    """The roadmap and, in tree order, the columns of its topics that the tree's JSON shows:
    two queries and one tuple per topic, however large the tree (decision 0043)."""
    roadmap = await require_roadmap(session, slug, viewer)
    return TreeRows(roadmap, await repository.load_tree_topics(session, roadmap.id))


async def trees_of(
    session: AsyncSession, listed: Sequence[RoadmapRef]
) -> dict[int, tuple[TopicNode[TopicDetail], ...]]:
    """The trees of roadmaps the caller was already allowed to see (a list of them), by
    roadmap id, in one query however many roadmaps: what a batched API read needs."""
    if not listed:
        return {}
    by_roadmap: dict[int, list[TopicDetail]] = {roadmap.id: [] for roadmap in listed}
    for topic in await repository.load_topics_of(session, list(by_roadmap)):
        by_roadmap[topic.roadmap_id].append(TopicDetail.of(topic))
    return {roadmap_id: nest(topics) for roadmap_id, topics in by_roadmap.items()}


async def get_outline(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapTree[TopicRef]:
    """The tree with each topic's place, title, summary, concept and estimate only: what
    progress views roll up, without the resources and other lists the tree page shows."""
    return await outline_of(session, await require_roadmap(session, slug, viewer))


async def outline_of(session: AsyncSession, roadmap: RoadmapRef) -> RoadmapTree[TopicRef]:
    """The outline of a roadmap the caller already holds (see `get_outline`)."""
    topics = [TopicRef.of(row) for row in await repository.load_outline(session, roadmap.id)]
    return RoadmapTree(roadmap, nest(topics), len(topics))


async def get_topic(session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer) -> TopicView:
    roadmap = await require_roadmap(session, slug, viewer)
    return await topic_view(session, roadmap, topic_slug)


async def find_topic(
    session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer
) -> TopicDetail:
    """One topic of a roadmap the viewer may see, without loading the rest of the tree."""
    roadmap = await require_roadmap(session, slug, viewer)
    topic = await repository.find_topic(session, roadmap.id, topic_slug)
    if topic is None:
        raise TopicNotFound(slug, topic_slug)
    return TopicDetail.of(topic)


async def locate_topic(
    session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer
) -> TopicPlace:
    """Which topic a write is about, in one statement and without reading what the topic says
    (a progress write needs its id alone): RoadmapNotFound or TopicNotFound as `find_topic`."""
    found = await repository.topic_place(session, slug, topic_slug, viewer)
    if found is None:
        raise RoadmapNotFound(slug)
    roadmap_id, topic_id = found
    if topic_id is None:
        raise TopicNotFound(slug, topic_slug)
    return TopicPlace(topic_id, roadmap_id, topic_slug)


async def get_topic_in_tree(
    session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer
) -> tuple[TopicView, RoadmapTree[TopicDetail]]:
    """A topic and its roadmap's whole tree from one load of the topics: what a page showing
    the topic beside the learner's progress on the roadmap needs."""
    roadmap = await require_roadmap(session, slug, viewer)
    topics = await _details(session, roadmap.id)
    view = topic_view_of(roadmap, topics, topic_slug)
    return view, RoadmapTree(roadmap, nest(topics), len(topics))


async def topic_view(session: AsyncSession, roadmap: RoadmapRef, topic_slug: str) -> TopicView:
    """A topic of a roadmap already checked for access, with its ancestors and children."""
    return topic_view_of(roadmap, await _details(session, roadmap.id), topic_slug)


def topic_view_of(roadmap: RoadmapRef, topics: Sequence[TopicDetail], topic_slug: str) -> TopicView:
    """The view of one of `topics` (all of the roadmap's, in tree order)."""
    by_id = {topic.id: topic for topic in topics}
    topic = next((t for t in topics if t.slug == topic_slug), None)
    if topic is None:
        raise TopicNotFound(roadmap.slug, topic_slug)
    ancestors: list[TopicRef] = []
    parent_id = topic.parent_id
    while parent_id is not None:
        ancestors.insert(0, by_id[parent_id])
        parent_id = by_id[parent_id].parent_id
    children = sorted((t for t in topics if t.parent_id == topic.id), key=lambda t: t.position)
    return TopicView(roadmap, topic, tuple(ancestors), tuple(children))


async def _details(session: AsyncSession, roadmap_id: int) -> list[TopicDetail]:
    return [TopicDetail.of(row) for row in await repository.load_topics(session, roadmap_id)]


async def concept_topics(session: AsyncSession, concepts: Sequence[str]) -> dict[int, str]:
    """Topic id -> concept for every topic of any roadmap teaching one of `concepts`."""
    return dict(await repository.topics_with_concepts(session, sorted(set(concepts))))


async def titles_by_roadmap(
    session: AsyncSession, topic_ids: Sequence[int]
) -> list[tuple[int, str, str]]:
    """(topic id, roadmap title, topic title) of these topics, in the order of roadmap titles."""
    return list(await repository.titles_by_roadmap(session, sorted(set(topic_ids))))


async def topic_labels(session: AsyncSession, topic_ids: Sequence[int]) -> dict[int, TopicLabel]:
    rows = await repository.topic_labels(session, sorted(set(topic_ids)))
    return {row[0]: TopicLabel(*row) for row in rows}


def with_topic_labels(
    query: Select[*tuple[Any, ...]], topic_id: ColumnElement[int]
) -> Select[*tuple[Any, ...]]:
    """Another domain's query with the label of each row's topic (roadmap slug, topic slug,
    title; NULL for a topic that does not exist) added as its last three columns, joined by
    the database: a list of another domain's rows named by their topics in one statement
    instead of two (`TopicLabel` describes the columns)."""
    return repository.with_topic_labels(query, topic_id)


async def export_document(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapDoc:
    tree = await get_tree(session, slug, viewer)
    return build_document(tree.roadmap, tree.sections)


def build_document(roadmap: RoadmapRef, sections: Sequence[TopicNode[TopicDetail]]) -> RoadmapDoc:
    """The portable document of a stored roadmap: what exports, forks and revisions contain."""
    return RoadmapDoc(
        slug=roadmap.slug,
        title=roadmap.title,
        description=roadmap.description,
        topics=[_to_document(node) for node in sections],
    )


@dataclass(frozen=True)
class Upload:
    """A document as it arrived: its bytes, the name and type it came with, the limits."""

    data: bytes
    filename: str | None
    content_type: str | None
    limits: ImportLimits


async def import_upload(
    session: AsyncSession,
    upload: Upload,
    writer: Principal,
    viewer: Viewer,
    *,
    dry_run: bool,
    slug: str | None,
    visibility: Visibility | None,
    org: str | None,
    clock: Clock,
) -> ImportReport:
    """Parse an uploaded document and import it for the writer (into `org`, when shared with
    an organisation they own or mentor)."""
    fmt = detect_format(upload.filename, upload.content_type)
    # Parsing a large document is CPU work: keep it off the event loop.
    parsed = await anyio.to_thread.run_sync(
        lambda: parse_roadmap(upload.data, fmt, upload.limits, source_name=upload.filename)
    )
    org_id = await organisation_for(session, writer, visibility, org)
    return await import_roadmap(
        session,
        parsed,
        viewer=viewer,
        dry_run=dry_run,
        slug=slug,
        visibility=visibility,
        org_id=org_id,
        clock=clock,
    )


async def import_roadmap(
    session: AsyncSession,
    parsed: ParsedRoadmap,
    *,
    viewer: Viewer,
    source: RoadmapSource = "import",
    dry_run: bool = False,
    slug: str | None = None,
    visibility: Visibility | None = None,
    org_id: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> ImportReport:
    """Create or update a roadmap from a parsed document; a dry run reports and writes nothing.

    A new roadmap belongs to the importing user and is private unless `visibility` says
    otherwise (organisation roadmaps need `org_id`; the caller checks the importer's role
    there). An existing one may be re-imported only by someone allowed to edit it.
    """
    document = parsed.document
    slug = slug or document.slug
    if slug is None:
        raise ValueError("importers assign a roadmap slug")
    document = document.model_copy(update={"slug": slug})
    roadmap = await repository.get_roadmap(session, slug, OPERATOR, for_update=not dry_run)
    if roadmap is not None:
        _check_may_reimport(roadmap, viewer, source)
    existing = await repository.load_topics(session, roadmap.id) if roadmap else []
    plan = plan_import(existing, document)
    created = roadmap is None
    if dry_run:
        found = None if roadmap is None else RoadmapRef.of(roadmap)
        return ImportReport(found, slug, created, True, plan, parsed)
    now = clock.now()
    try:
        roadmap = await apply_document(
            session, roadmap, existing, document, plan, source=source, now=now
        )
        _set_access(roadmap, viewer, visibility, org_id, created=created)
        await repository.flush(session)
    except IntegrityError as error:  # a concurrent import created the same slug first
        raise ConcurrentImport(slug) from error
    stale_on_commit(session, cache_namespace(slug), CONCEPTS_CACHE_NAMESPACE)
    emit_changed(session, roadmap, now)
    return ImportReport(RoadmapRef.of(roadmap), slug, created, False, plan, parsed)


def _to_document(node: TopicNode[TopicDetail]) -> TopicDoc:
    topic = node.topic
    return TopicDoc(
        slug=topic.slug,
        title=topic.title,
        summary=topic.summary,
        why=topic.why,
        level=topic.level,  # validated when it was imported
        tags=list(topic.tags),
        seeds=list(topic.seeds),
        aliases=list(topic.aliases),
        resources=[ResourceDoc.model_validate(r) for r in topic.resources],
        implemented_in=[ReferenceDoc.model_validate(r) for r in topic.implemented_in],
        concept=topic.concept,
        estimate_hours=topic.estimate_hours,
        checkbox=topic.checkbox,
        children=[_to_document(child) for child in node.children],
    )


def _check_may_reimport(roadmap: Roadmap, viewer: Viewer, source: RoadmapSource) -> None:
    if roadmap.source == "builtin" and source != "builtin":
        raise BuiltinRoadmapProtected(roadmap.slug)
    if not viewer.can_see(roadmap):
        # Saying only that the slug is taken keeps a private roadmap's content private.
        raise RoadmapSlugTaken(roadmap.slug)
    if not viewer.can_edit(roadmap):
        raise RoadmapNotEditable(roadmap.slug)


def _set_access(
    roadmap: Roadmap,
    viewer: Viewer,
    visibility: Visibility | None,
    org_id: int | None,
    *,
    created: bool,
) -> None:
    if created:
        roadmap.owner_id = viewer.user_id
        # Users' imports start private; the operator's are public, like the built-in one.
        roadmap.visibility = visibility or (
            Visibility.PUBLIC if viewer.operator else Visibility.PRIVATE
        )
        roadmap.org_id = org_id
    elif visibility is not None:
        roadmap.visibility = visibility
        roadmap.org_id = org_id if visibility == Visibility.ORGANISATION else None


async def require_visible(session: AsyncSession, slug: str, viewer: Viewer) -> None:
    """RoadmapNotFound unless the viewer may see the roadmap: `require_roadmap` for a caller
    that needs the answer, not the roadmap (a read served from the cache)."""
    if not await repository.is_visible(session, slug, viewer):
        raise RoadmapNotFound(slug)


async def require_roadmap(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapRef:
    """The roadmap, or RoadmapNotFound — also when it exists but the viewer may not see it."""
    return RoadmapRef.of(await roadmap_row(session, slug, viewer))


async def organisation_for(
    session: AsyncSession, writer: Principal, visibility: Visibility | None, org: str | None
) -> int | None:
    """The organisation an import is shared with; only its owners and mentors may do that."""
    if visibility != Visibility.ORGANISATION:
        if org is not None:
            raise UnprocessableContent("'org' only goes with visibility=organisation.", field="org")
        return None
    if org is None:
        raise UnprocessableContent("visibility=organisation needs 'org'.", field="org")
    member = await orgs.membership_of(session, org, writer)
    member.require(orgs.Role.OWNER, orgs.Role.MENTOR)
    return member.org.id


def visible_roadmap_ids(viewer: Viewer, slug: str | None = None) -> Select[int]:
    """The ids of the roadmaps `viewer` may see (only `slug`'s, when given), as a subquery.

    Other domains put it inside their own queries (the search index does), so the visibility
    rule is applied by the database, in one place, and never by filtering fetched rows.
    """
    return repository.visible_ids(viewer, slug)


@dataclass(frozen=True)
class TopicText:
    """What a topic says, for a full-text index."""

    topic_id: int
    roadmap_id: int
    title: str
    text: str
    updated_at: datetime


async def topic_texts(session: AsyncSession, roadmap_id: int) -> list[TopicText]:
    """Every topic of the roadmap with its searchable text (summary, why, aliases, tags)."""
    texts = []
    for topic in await repository.load_topics(session, roadmap_id):
        parts = [topic.summary, topic.why, " ".join(topic.aliases), " ".join(topic.tags)]
        text = "\n".join(part for part in parts if part)
        texts.append(TopicText(topic.id, topic.roadmap_id, topic.title, text, topic.updated_at))
    return texts


async def roadmap_ids_of_topics(session: AsyncSession, topic_ids: set[int]) -> dict[int, int]:
    """Topic id -> the id of its roadmap, for the topics that exist."""
    if not topic_ids:
        return {}
    return await repository.roadmap_ids_of_topics(session, topic_ids)


async def roadmap_ids(session: AsyncSession) -> list[int]:
    """Every roadmap's id, in order (index rebuilds walk them)."""
    return list(await repository.all_ids(session))


async def roadmaps_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[RoadmapRef]:
    """Roadmaps by id, whoever may see them: for callers that checked access their own way
    (an organisation's assignments)."""
    rows = await repository.roadmaps_by_ids(session, ids) if ids else []
    return [RoadmapRef.of(row) for row in rows]


async def roadmaps_of_org(session: AsyncSession, org_id: int) -> list[RoadmapRef]:
    """The roadmaps an organisation owns (organisation-visible or published by it)."""
    return [RoadmapRef.of(row) for row in await repository.roadmaps_of_org(session, org_id)]


def may_edit(viewer: Viewer, roadmap: RoadmapRef) -> bool:
    """Whether the viewer may change this roadmap (its owner, its organisation's editors)."""
    return viewer.can_edit(roadmap)


async def delete_private_roadmaps_of(session: AsyncSession, owner_id: int) -> int:
    """Account deletion: roadmaps only their owner could see go with the account. Public and
    organisation roadmaps stay (others learn from them and fork them), their owner unlinked by
    ON DELETE SET NULL, like the roadmaps the operator installs (decision 0053)."""
    return await repository.delete_private_roadmaps_of(session, owner_id)
