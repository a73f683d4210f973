"""The rules of search: what a caller may find, how hits are presented, how the index is kept.

Who sees what (the same rules as everywhere, applied inside the search statement):
    topics                 of every roadmap the caller may see (anonymous visitors: public ones)
    notes and resources    the caller's own, on roadmaps they may still see, and only when the
                           credential may read their progress (a browser session, a token, or
                           an API key with `progress:read`)

The index is a copy kept in step by domain events (`apply_event`, delivered by the worker from
the outbox) and rebuilt from the owning domains by `reindex`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.identity import Viewer
from skilltree.platform.events import Event
from skilltree.progress import service as progress
from skilltree.roadmaps import service as roadmaps
from skilltree.search import repository
from skilltree.search.errors import EmptySearch, StatusNeedsLearner
from skilltree.search.query import MARK_END, MARK_START, Mode, clean, parse
from skilltree.search.repository import DocumentText, Highlight, Hit, Scope

KINDS = ("topic", "note", "resource")
STATUSES = ("todo", "in_progress", "done", "skipped")
INDEXED_EVENTS = frozenset(
    {roadmaps.ROADMAP_CHANGED, progress.NOTE_CHANGED, progress.RESOURCE_CHANGED}
)
REINDEX_BATCH = 1_000
# Feature flag (docs/feature-flags.md): off, a search whose words match nothing stays empty
# instead of retrying with typo tolerance, the costly trigram scan on a large index. On unless
# an administrator says otherwise, for everyone, an organisation, a user or a share of users.
TYPO_TOLERANCE_FLAG = "search-typo-tolerance"


@dataclass(frozen=True)
class SearchRequest:
    text: str
    mode: Mode = Mode.WORDS
    roadmap: str | None = None
    kinds: frozenset[str] = frozenset(KINDS)
    status: str | None = None
    after: tuple[float, int] | None = None  # the last hit of the previous page
    fuzzy: bool = False  # the previous page was found with typo tolerance
    limit: int = 20
    typo_tolerance: bool = True  # retry with typo tolerance when the words find nothing


@dataclass(frozen=True)
class SearchHit:
    kind: str
    roadmap: str
    topic: str
    topic_title: str
    title_html: str  # escaped, with <mark> around matched words
    snippet_html: str
    score: float
    resource_id: int | None


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    counts: dict[str, int]  # matches per kind, under the same rules as the hits
    next_after: tuple[float, int] | None
    fuzzy: bool  # found with typo tolerance (the words as typed matched nothing)


async def search(
    session: AsyncSession, viewer: Viewer, request: SearchRequest, *, personal: bool
) -> SearchResults:
    """One page of hits for `viewer`; `personal` admits their notes and resources."""
    query = parse(request.text, request.mode)
    if query.empty:
        raise EmptySearch()
    scope = _scope(viewer, request, personal)
    index = repository.index_for(session)
    fuzzy = request.fuzzy
    page = await index.page(session, query, scope, request.after, request.limit + 1, fuzzy)
    if not page.hits and request.after is None and not fuzzy and request.typo_tolerance:
        # Typo tolerance only when the words as typed find nothing: exact matches are never
        # drowned by near ones, and the common case is one index scan.
        fuzzy = True
        page = await index.page(session, query, scope, None, request.limit + 1, fuzzy)
    counts = page.counts
    if counts is None and not page.hits and request.after is None:
        counts = {}  # nothing on the first page: nothing at all
    if counts is None:
        counts = await index.counts(session, query, scope, fuzzy)
    rows = page.hits[: request.limit]
    highlights = page.highlights
    if highlights is None:
        highlights = await index.highlights(session, query, [row.id for row in rows])
    hits = await _present(session, highlights, rows)
    last = rows[-1] if len(page.hits) > request.limit else None
    return SearchResults(
        hits=hits,
        counts={kind: counts.get(kind, 0) for kind in KINDS if kind in scope.kinds},
        next_after=(last.score, last.id) if last else None,
        fuzzy=fuzzy,
    )


def _scope(viewer: Viewer, request: SearchRequest, personal: bool) -> Scope:
    user_id = viewer.user_id if personal else None
    kinds = request.kinds if user_id is not None else request.kinds & {"topic"}
    scope = Scope(roadmaps.visible_roadmap_ids(viewer, request.roadmap), user_id, kinds)
    if request.status is None:
        return scope
    if user_id is None:
        raise StatusNeedsLearner()
    if request.status == "todo":
        # Never marked, or marked todo: every topic without another status.
        marked = progress.topic_ids_with_status(user_id, [s for s in STATUSES if s != "todo"])
        return Scope(scope.visible_roadmaps, user_id, kinds, marked, status_excludes=True)
    marked = progress.topic_ids_with_status(user_id, [request.status])
    return Scope(scope.visible_roadmaps, user_id, kinds, marked)


async def _present(
    session: AsyncSession, highlights: dict[int, Highlight], rows: Sequence[Hit]
) -> list[SearchHit]:
    labels = await roadmaps.topic_labels(session, [row.topic_id for row in rows])
    hits = []
    for row in rows:
        label = labels[row.topic_id]
        highlight = highlights.get(row.id)
        title = highlight.title if highlight else row.title
        snippet = highlight.snippet if highlight else ""
        hits.append(
            SearchHit(
                kind=row.kind,
                roadmap=label.roadmap_slug,
                topic=label.slug,
                topic_title=label.title,
                title_html=marked_html(title or label.title),
                snippet_html=marked_html(snippet),
                score=row.score,
                resource_id=int(row.key.rpartition(":")[2]) if row.kind == "resource" else None,
            )
        )
    return hits


def marked_html(text: str) -> str:
    """Escape everything the learner or an author wrote, then turn the database's highlight
    markers (which stored text cannot contain) into <mark> elements."""
    return html.escape(text).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


# Keeping the index.


async def apply_event(session: AsyncSession, event: Event) -> None:
    """Bring the documents an event names up to date by re-reading their owner's current
    state: applying an old or repeated event leaves the index as the latest one would."""
    data = event.data
    if event.type == roadmaps.ROADMAP_CHANGED:
        await index_roadmap(session, int(data["roadmap_id"]))
    elif event.type == progress.NOTE_CHANGED:
        await index_note(session, int(data["user_id"]), int(data["topic_id"]))
    elif event.type == progress.RESOURCE_CHANGED:
        await index_resource(session, int(data["resource_id"]))


async def index_roadmap(session: AsyncSession, roadmap_id: int) -> int:
    texts = await roadmaps.topic_texts(session, roadmap_id)
    documents = [_topic_document(text) for text in texts]
    stale = await repository.topic_keys(session, roadmap_id) - {doc.key for doc in documents}
    await repository.delete_keys(session, sorted(stale))
    for start in range(0, len(documents), REINDEX_BATCH):
        await repository.upsert(session, documents[start : start + REINDEX_BATCH])
    return len(documents)


async def index_note(session: AsyncSession, user_id: int, topic_id: int) -> None:
    note = await progress.note_text(session, user_id, topic_id)
    if note is None:
        await repository.delete_keys(session, [_note_key(user_id, topic_id)])
    else:
        await repository.upsert(session, [_note_document(note)])


async def index_resource(session: AsyncSession, resource_id: int) -> None:
    resource = await progress.resource_text(session, resource_id)
    if resource is None:
        await repository.delete_keys(session, [_resource_key(resource_id)])
    else:
        await repository.upsert(session, [_resource_document(resource)])


Progress = Callable[[int], None]  # told how many documents were just indexed


async def documents_to_index(session: AsyncSession) -> int:
    """Roughly how many documents a rebuild writes (for a progress bar): notes and resources
    counted exactly, topics as they come."""
    return await progress.count_notes_and_resources(session)


async def reindex(session: AsyncSession, advance: Progress) -> int:
    """Rebuild the whole index from the owning domains, in the caller's transaction: readers
    keep seeing the old index until it commits. Returns the number of documents."""
    await repository.delete_all(session)
    total = 0
    for roadmap_id in await roadmaps.roadmap_ids(session):
        written = await index_roadmap(session, roadmap_id)
        total += written
        advance(written)
    after_note = (0, 0)
    while batch := await progress.note_texts_after(session, after_note, REINDEX_BATCH):
        await repository.upsert(session, [_note_document(note) for note in batch])
        after_note = (batch[-1].user_id, batch[-1].topic_id)
        total += len(batch)
        advance(len(batch))
    after_resource = 0
    while links := await progress.resource_texts_after(session, after_resource, REINDEX_BATCH):
        await repository.upsert(session, [_resource_document(link) for link in links])
        after_resource = links[-1].resource_id
        total += len(links)
        advance(len(links))
    return total


async def document_count(session: AsyncSession) -> int:
    return await repository.count(session)


def _topic_document(text: roadmaps.TopicText) -> DocumentText:
    return DocumentText(
        key=f"topic:{text.topic_id}",
        kind="topic",
        roadmap_id=text.roadmap_id,
        topic_id=text.topic_id,
        user_id=None,
        title=clean(text.title),
        body=clean(text.text),
        updated_at=text.updated_at,
    )


def _note_key(user_id: int, topic_id: int) -> str:
    return f"note:{user_id}:{topic_id}"


def _note_document(note: progress.NoteText) -> DocumentText:
    return DocumentText(
        key=_note_key(note.user_id, note.topic_id),
        kind="note",
        roadmap_id=note.roadmap_id,
        topic_id=note.topic_id,
        user_id=note.user_id,
        title="",
        body=clean(note.markdown),
        updated_at=note.updated_at,
    )


def _resource_key(resource_id: int) -> str:
    return f"resource:{resource_id}"


def _resource_document(resource: progress.ResourceText) -> DocumentText:
    return DocumentText(
        key=_resource_key(resource.resource_id),
        kind="resource",
        roadmap_id=resource.roadmap_id,
        topic_id=resource.topic_id,
        user_id=resource.user_id,
        title=clean(resource.title),
        body=clean(resource.url),
        updated_at=resource.created_at,
    )
