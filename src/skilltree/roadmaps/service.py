"""The rules of the roadmaps domain: reading trees, importing documents, exporting them.

No HTTP types and no SQL here: the router shapes requests and responses, the repository owns the
queries. Services flush, never commit; the caller's unit of work decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import anyio.to_thread
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.identity import Principal
from skilltree.orgs import service as orgs
from skilltree.platform import events
from skilltree.platform.cache import stale_on_commit
from skilltree.platform.errors import UnprocessableContent
from skilltree.platform.filtering import ListQuery
from skilltree.platform.models import utc_now
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
from skilltree.roadmaps.models import Roadmap, Topic
from skilltree.roadmaps.planning import ImportPlan, content_hash, plan_import
from skilltree.roadmaps.policies import OPERATOR, Viewer, Visibility

RoadmapSource = Literal["builtin", "import", "custom", "fork"]

# Progress that is shared by concept reads topics of every roadmap, so a change to which topics
# exist or which concept they teach (an import, a deletion) makes such summaries stale.
CONCEPTS_CACHE_NAMESPACE = "concepts"


class RoadmapRef(Protocol):
    """What other domains read of a roadmap handed out in a tree or a view: read-only."""

    @property
    def id(self) -> int: ...
    @property
    def slug(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def visibility(self) -> str: ...
    @property
    def org_id(self) -> int | None: ...


class TopicRef(Protocol):
    """What other domains read of a topic handed out in a tree or a view: read-only."""

    @property
    def id(self) -> int: ...
    @property
    def roadmap_id(self) -> int: ...
    @property
    def slug(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def concept(self) -> str | None: ...
    @property
    def estimate_hours(self) -> float | None: ...


def cache_namespace(slug: str) -> str:
    """Named by every cached representation computed from this roadmap (its tree, its topics,
    progress on it); every change of the roadmap marks it stale."""
    return f"roadmap:{slug}"


@dataclass
class TopicNode:
    topic: Topic
    children: list[TopicNode] = field(default_factory=list)


@dataclass(frozen=True)
class RoadmapListing:
    roadmap: Roadmap
    topic_count: int


@dataclass(frozen=True)
class RoadmapTree:
    roadmap: Roadmap
    sections: list[TopicNode]
    topic_count: int


@dataclass(frozen=True)
class TopicView:
    roadmap: Roadmap
    topic: Topic
    ancestors: list[Topic]
    children: list[Topic]


@dataclass(frozen=True)
class TopicLabel:
    """Enough to name and link a topic from another domain (a review card, a feed item)."""

    topic_id: int
    roadmap_slug: str
    slug: str
    title: str


@dataclass(frozen=True)
class ImportReport:
    roadmap: Roadmap | None  # None for a dry run of a roadmap that does not exist yet
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
    return [RoadmapListing(roadmap, count) for roadmap, count in rows], total


async def get_roadmap(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapListing:
    return await listing_of(session, await require_roadmap(session, slug, viewer))


async def listing_of(session: AsyncSession, roadmap: Roadmap) -> RoadmapListing:
    return RoadmapListing(roadmap, await repository.count_topics(session, roadmap.id))


async def get_tree(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapTree:
    """The whole tree in two queries, whatever its size (roadmap row + all topics)."""
    roadmap = await require_roadmap(session, slug, viewer)
    topics = await repository.load_topics(session, roadmap.id)
    return RoadmapTree(roadmap, build_tree(topics), len(topics))


async def trees_of(
    session: AsyncSession, listed: Sequence[RoadmapRef]
) -> dict[int, list[TopicNode]]:
    """The trees of roadmaps the caller was already allowed to see (a list of them), by
    roadmap id, in one query however many roadmaps: what a batched API read needs."""
    if not listed:
        return {}
    by_roadmap: dict[int, list[Topic]] = {roadmap.id: [] for roadmap in listed}
    for topic in await repository.load_topics_of(session, list(by_roadmap)):
        by_roadmap[topic.roadmap_id].append(topic)
    return {roadmap_id: build_tree(topics) for roadmap_id, topics in by_roadmap.items()}


async def get_outline(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapTree:
    """The tree with each topic's place, title, summary, concept and estimate only: what
    progress views roll up, without the resources and other lists the tree page shows."""
    roadmap = await require_roadmap(session, slug, viewer)
    topics = await repository.load_outline(session, roadmap.id)
    return RoadmapTree(roadmap, build_tree(topics), len(topics))


async def get_topic(session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer) -> TopicView:
    roadmap = await require_roadmap(session, slug, viewer)
    return await topic_view(session, roadmap, topic_slug)


async def find_topic(session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer) -> Topic:
    """One topic of a roadmap the viewer may see, without loading the rest of the tree."""
    roadmap = await require_roadmap(session, slug, viewer)
    topic = await repository.find_topic(session, roadmap.id, topic_slug)
    if topic is None:
        raise TopicNotFound(slug, topic_slug)
    return topic


async def get_topic_in_tree(
    session: AsyncSession, slug: str, topic_slug: str, viewer: Viewer
) -> tuple[TopicView, RoadmapTree]:
    """A topic and its roadmap's whole tree from one load of the topics: what a page showing
    the topic beside the learner's progress on the roadmap needs."""
    roadmap = await require_roadmap(session, slug, viewer)
    topics = await repository.load_topics(session, roadmap.id)
    view = _topic_view_of(roadmap, topics, topic_slug)
    return view, RoadmapTree(roadmap, build_tree(topics), len(topics))


async def topic_view(session: AsyncSession, roadmap: Roadmap, topic_slug: str) -> TopicView:
    """A topic of a roadmap already checked for access, with its ancestors and children."""
    topics = await repository.load_topics(session, roadmap.id)
    return _topic_view_of(roadmap, topics, topic_slug)


def _topic_view_of(roadmap: Roadmap, topics: Sequence[Topic], topic_slug: str) -> TopicView:
    slug = roadmap.slug
    by_id = {topic.id: topic for topic in topics}
    topic = next((t for t in topics if t.slug == topic_slug), None)
    if topic is None:
        raise TopicNotFound(slug, topic_slug)
    ancestors: list[Topic] = []
    parent_id = topic.parent_id
    while parent_id is not None:
        ancestors.insert(0, by_id[parent_id])
        parent_id = by_id[parent_id].parent_id
    children = sorted((t for t in topics if t.parent_id == topic.id), key=lambda t: t.position)
    return TopicView(roadmap, topic, ancestors, children)


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


async def export_document(session: AsyncSession, slug: str, viewer: Viewer) -> RoadmapDoc:
    tree = await get_tree(session, slug, viewer)
    return build_document(tree.roadmap, tree.sections)


def build_document(roadmap: Roadmap, sections: list[TopicNode]) -> RoadmapDoc:
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
    report = ImportReport(roadmap, slug, roadmap is None, dry_run, plan, parsed)
    if dry_run:
        return report
    try:
        roadmap = await apply_document(session, roadmap, existing, document, plan, source)
        _set_access(roadmap, viewer, visibility, org_id, created=report.created)
    except IntegrityError as error:  # a concurrent import created the same slug first
        raise ConcurrentImport(slug) from error
    stale_on_commit(session, cache_namespace(slug), CONCEPTS_CACHE_NAMESPACE)
    emit_changed(session, roadmap)
    return ImportReport(roadmap, slug, report.created, False, plan, parsed)


async def apply_document(
    session: AsyncSession,
    roadmap: Roadmap | None,
    existing: Sequence[Topic],
    document: RoadmapDoc,
    plan: ImportPlan,
    source: RoadmapSource,
) -> Roadmap:
    digest = content_hash(document)
    now = utc_now()
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


def build_tree(topics: Sequence[Topic]) -> list[TopicNode]:
    """Assemble topics (parents first, siblings ordered) into nested nodes in one pass."""
    nodes = {topic.id: TopicNode(topic) for topic in topics}
    roots: list[TopicNode] = []
    for topic in topics:
        node = nodes[topic.id]
        if topic.parent_id is None:
            roots.append(node)
        else:
            nodes[topic.parent_id].children.append(node)
    return roots


def _to_document(node: TopicNode) -> TopicDoc:
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


async def require_roadmap(
    session: AsyncSession, slug: str, viewer: Viewer, *, for_update: bool = False
) -> Roadmap:
    """The roadmap, or RoadmapNotFound — also when it exists but the viewer may not see it."""
    roadmap = await repository.get_roadmap(session, slug, viewer, for_update=for_update)
    if roadmap is None:
        raise RoadmapNotFound(slug)
    return roadmap


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


# Emitted whenever a roadmap's topics or details change (import, edit, creation, fork): the
# search index re-reads the roadmap's topics when it arrives.
ROADMAP_CHANGED = "roadmap.changed"


def emit_changed(session: AsyncSession, roadmap: Roadmap) -> None:
    events.emit(
        session,
        ROADMAP_CHANGED,
        at=utc_now(),
        data={"roadmap_id": roadmap.id, "roadmap": roadmap.slug},
    )


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


async def roadmaps_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Roadmap]:
    """Roadmaps by id, whoever may see them: for callers that checked access their own way
    (an organisation's assignments)."""
    return await repository.roadmaps_by_ids(session, ids) if ids else []


async def roadmaps_of_org(session: AsyncSession, org_id: int) -> Sequence[Roadmap]:
    """The roadmaps an organisation owns (organisation-visible or published by it)."""
    return await repository.roadmaps_of_org(session, org_id)


def may_edit(viewer: Viewer, roadmap: RoadmapRef) -> bool:
    """Whether the viewer may change this roadmap (its owner, its organisation's editors)."""
    return isinstance(roadmap, Roadmap) and viewer.can_edit(roadmap)


async def outline_of(session: AsyncSession, roadmap: RoadmapRef) -> RoadmapTree:
    """The outline of a roadmap the caller already holds (see `get_outline`)."""
    if not isinstance(roadmap, Roadmap):
        roadmap = (await repository.roadmaps_by_ids(session, [roadmap.id]))[0]
    topics = await repository.load_outline(session, roadmap.id)
    return RoadmapTree(roadmap, build_tree(topics), len(topics))
