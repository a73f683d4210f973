"""The rules of progress: record a status as an event and project it, undo, summarise, and
move a learner's progress in and out of files.

Writing a status appends to `progress_events` and updates `topic_progress` in the same unit of
work (event sourcing with a read model, CQRS-style: commands append, queries read the
projection). Everything is keyed to topic ids, so a roadmap's renames and moves keep progress.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.identity import ANONYMOUS
from skilltree.platform import events
from skilltree.platform.cache import stale_on_commit
from skilltree.platform.observability import metrics
from skilltree.platform.observability.business import count_on_commit
from skilltree.platform.pagination import Page, Position, make_page
from skilltree.profiles import service as profiles
from skilltree.progress import activity, repository, rollup
from skilltree.progress.errors import InvalidProgressImport, NothingToUndo
from skilltree.progress.models import ProgressEvent, TopicProgress
from skilltree.progress.notes import NOTE_CHANGED as NOTE_CHANGED
from skilltree.progress.notes import RESOURCE_CHANGED as RESOURCE_CHANGED
from skilltree.reviews import service as reviews
from skilltree.roadmaps import progress_link
from skilltree.roadmaps import service as roadmaps

TOPIC_STATUS_CHANGED = "topic.status_changed"


# Who is recording progress, and what the writes are stamped with. Roadmaps hands this shape
# over when an import or a fork writes the caller's progress (it may not import progress), so
# progress uses that one shape rather than a copy of it.
Learner = progress_link.Writer


@dataclass(frozen=True)
class RoadmapProgress:
    roadmap: roadmaps.RoadmapRef
    sections: list[rollup.NodeState]

    @property
    def tally(self) -> rollup.Tally:
        return rollup.total(self.sections)

    def topics(self) -> list[rollup.NodeState]:
        return rollup.flatten(self.sections)


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded change of a topic's status, as routes and other domains see it."""

    id: int
    topic_id: int
    from_status: str | None
    to_status: str | None
    confidence: int | None
    occurred_at: datetime
    request_id: str | None
    undoes_event_id: int | None

    @classmethod
    def of(cls, row: ProgressEvent) -> Event:
        return cls(
            id=row.id,
            topic_id=row.topic_id,
            from_status=row.from_status,
            to_status=row.to_status,
            confidence=row.confidence,
            occurred_at=row.occurred_at,
            request_id=row.request_id,
            undoes_event_id=row.undoes_event_id,
        )


@dataclass(frozen=True)
class History:
    page: Page[Event]
    topics: dict[int, roadmaps.TopicRef]


@dataclass(frozen=True)
class Stats:
    streaks: activity.Streaks
    heatmap: list[tuple[date, int]]
    time_zone: str


@dataclass(frozen=True)
class ImportedMark:
    topic_id: int | None
    slug: str | None
    status: rollup.Status
    confidence: int | None


@dataclass(frozen=True)
class ImportResult:
    changed: int
    unchanged: int


def cache_namespaces(user_id: int, slug: str) -> tuple[str, ...]:
    """What a learner's progress on a roadmap is computed from: their marks, their profile
    (concept sharing), the roadmap, and the topics sharing its concepts."""
    return (
        cache_namespace(user_id),
        profiles.cache_namespace(user_id),
        roadmaps.cache_namespace(slug),
        roadmaps.CONCEPTS_CACHE_NAMESPACE,
    )


def cache_namespace(user_id: int) -> str:
    """Every change of the learner's progress, on any roadmap, marks it stale."""
    return f"learner:{user_id}"


async def check_access(session: AsyncSession, learner: Learner, slug: str) -> None:
    """RoadmapNotFound unless the learner may see the roadmap now (membership can end)."""
    await roadmaps.require_visible(session, slug, learner.viewer)


async def roadmap_progress(session: AsyncSession, learner: Learner, slug: str) -> RoadmapProgress:
    """Every topic's status by the roll-up rule, in a constant number of queries."""
    tree = await roadmaps.get_outline(session, slug, learner.viewer)
    return await _progress_of(session, learner.user_id, tree)


async def set_status(
    session: AsyncSession,
    learner: Learner,
    slug: str,
    topic_slug: str,
    status: rollup.Status,
    confidence: int | None,
) -> rollup.Mark:
    """Record a status. Sending the current status and confidence again records nothing."""
    topic = await roadmaps.locate_topic(session, slug, topic_slug, learner.viewer)
    await repository.lock_learner(session, learner.user_id)
    now = learner.clock.now()
    if repository.changes_in_one_statement(session):
        # The domain event's outbox row is written by the same statement: its `from` and
        # `progress_event_id` are known only there, and are filled in there.
        event = events.new_event(
            TOPIC_STATUS_CHANGED, at=now, data=_change_data(learner, slug, topic, None, status, 0)
        )
        change = await repository.change_mark(
            session,
            learner.user_id,
            topic.id,
            topic.roadmap_id,
            status=status,
            confidence=confidence,
            occurred_at=now,
            request_id=learner.request_id,
            message=events.outbox_row(event),
        )
        if change.event_id is None:
            assert change.before is not None  # nothing is appended only when a mark is held
            return _held(topic.id, change.before)
        before = change.before.status if change.before is not None else None
        data = _change_data(learner, slug, topic, before, status, change.event_id)
        written = dataclasses.replace(event, data=data)
        await _follow_change(
            session, learner, slug, topic, before, status, change.event_id, now, written=written
        )
    else:
        current = await repository.current_mark(session, learner.user_id, topic.id)
        if current is not None and (current.status, current.confidence) == (status, confidence):
            return _held(topic.id, current)
        await _record(session, learner, slug, topic, current, status, confidence, now=now)
    if status == "done":
        count_on_commit(session, metrics.TOPICS_COMPLETED)
    # What the projection now holds, as written: reading the row back would cost a statement
    # for a topic marked for the first time.
    return rollup.Mark(topic.id, status, confidence, now)


def _held(topic_id: int, mark: repository.CurrentMark) -> rollup.Mark:
    return rollup.Mark(topic_id, mark.status, mark.confidence, mark.updated_at)


def _mark_of(row: TopicProgress) -> rollup.Mark:
    return rollup.Mark(row.topic_id, row.status, row.confidence, row.updated_at)


async def undo_last(
    session: AsyncSession, learner: Learner, slug: str
) -> tuple[Event, roadmaps.TopicRef]:
    """Revert the newest change on the roadmap that is not undone yet; repeat to go further."""
    tree = await roadmaps.get_tree(session, slug, learner.viewer)
    await repository.lock_learner(session, learner.user_id)
    last = await repository.last_undoable(session, learner.user_id, tree.roadmap.id)
    if last is None:
        raise NothingToUndo(slug)
    topic = _topics_by_id(tree)[last.topic_id]
    current = await repository.current_mark(session, learner.user_id, topic.id)
    undo = await _record(
        session,
        learner,
        tree.roadmap.slug,
        topic,
        current,
        last.from_status,
        last.from_confidence,
        undoes=last,
    )
    return undo, topic


async def history(
    session: AsyncSession, learner: Learner, slug: str, position: Position | None, limit: int
) -> History:
    tree = await roadmaps.get_tree(session, slug, learner.viewer)
    return await history_in(session, learner, tree, position, limit)


async def history_in(
    session: AsyncSession,
    learner: Learner,
    tree: roadmaps.RoadmapTree[roadmaps.TopicRef],
    position: Position | None,
    limit: int,
) -> History:
    """`history` over a tree the caller already loaded (and checked access to)."""
    rows = await repository.history_page(session, learner.user_id, tree.roadmap.id, position, limit)
    page = make_page(rows, position, limit, lambda event: (event.occurred_at, event.id))
    events_page = Page([Event.of(row) for row in page.items], page.next, page.prev)
    return History(events_page, _topics_by_id(tree))


async def stats(session: AsyncSession, user_id: int, now: datetime) -> Stats:
    """Current and longest streak and the last 365 days of activity, in the learner's zone."""
    profile = await profiles.get_profile(session, user_id)
    moments = await repository.activity_since(session, user_id)
    by_day = activity.activity_by_day(moments, profile.zone)
    today = now.astimezone(profile.zone).date()
    return Stats(
        streaks=activity.streaks(by_day, today),
        heatmap=list(activity.heatmap(by_day, today)),
        time_zone=profile.time_zone,
    )


async def import_marks(
    session: AsyncSession, learner: Learner, slug: str, marks: Sequence[ImportedMark]
) -> ImportResult:
    """Apply an exported progress file. Topics are matched by id, then by slug; an entry that
    matches nothing rejects the whole file. Entries equal to the current state record nothing,
    so importing the same file twice changes nothing the second time."""
    tree = await roadmaps.get_tree(session, slug, learner.viewer)
    targets = _import_targets(tree, marks)
    await repository.lock_learner(session, learner.user_id)
    current = await repository.current_marks(
        session, learner.user_id, [topic.id for topic, _ in targets]
    )
    changed = 0
    for topic, entry in targets:
        existing = current.get(topic.id)
        if existing is not None and (existing.status, existing.confidence) == (
            entry.status,
            entry.confidence,
        ):
            continue
        await _record(
            session, learner, tree.roadmap.slug, topic, existing, entry.status, entry.confidence
        )
        changed += 1
    return ImportResult(changed=changed, unchanged=len(targets) - changed)


async def progress_on(
    session: AsyncSession, user_id: int, tree: roadmaps.RoadmapTree[roadmaps.TopicRef]
) -> RoadmapProgress:
    """A learner's progress on a roadmap whose outline the caller loaded and may show (a
    mentor's view of an organisation's roadmaps loads each outline once for every member)."""
    return await _progress_of(session, user_id, tree)


async def apply_checklist_marks(
    session: AsyncSession, learner: Learner, slug: str, marks: Sequence[tuple[str, rollup.Status]]
) -> ImportResult:
    """Record the boxes an imported checklist had ticked as the importer's progress.

    Only boxes that say something (done, in progress, skipped) are applied: an empty box must
    not undo what the learner has recorded since the last import."""
    entries = [
        ImportedMark(topic_id=None, slug=topic_slug, status=status, confidence=None)
        for topic_slug, status in marks
        if status != "todo"
    ]
    if not entries:
        return ImportResult(changed=0, unchanged=0)
    return await import_marks(session, learner, slug, entries)


async def carry_over(
    session: AsyncSession, learner: Learner, from_slug: str, to_slug: str
) -> ImportResult:
    """Copy the learner's own marks from one roadmap onto the topics with the same slugs in
    another (a fork of it): what one has learned stays learned in one's copy."""
    source = await roadmaps.get_tree(session, from_slug, learner.viewer)
    by_id = _topics_by_id(source)
    rows = await repository.marks(session, learner.user_id, list(by_id))
    entries = [
        ImportedMark(
            topic_id=None,
            slug=by_id[row.topic_id].slug,
            status=row.status,  # type: ignore[arg-type]
            confidence=row.confidence,
        )
        for row in rows
        if row.status != "todo"
    ]
    if not entries:
        return ImportResult(changed=0, unchanged=0)
    return await import_marks(session, learner, to_slug, entries)


async def public_summary(session: AsyncSession, user_id: int, slug: str) -> RoadmapProgress:
    """A learner's progress on a public roadmap, as anyone may see it (for badges)."""
    tree = await roadmaps.get_outline(session, slug, ANONYMOUS)
    return await _progress_of(session, user_id, tree)


async def replay(session: AsyncSession, user_id: int) -> dict[int, tuple[str, int | None]]:
    """The projection rebuilt from the event log alone: topic id -> (status, confidence)."""
    state: dict[int, tuple[str, int | None]] = {}
    for event in await repository.events_of(session, user_id):
        if event.to_status is None:
            state.pop(event.topic_id, None)
        else:
            state[event.topic_id] = (event.to_status, event.confidence)
    return state


async def projection(session: AsyncSession, user_id: int) -> dict[int, tuple[str, int | None]]:
    return {
        row.topic_id: (row.status, row.confidence)
        for row in await repository.all_marks(session, user_id)
    }


async def _record(
    session: AsyncSession,
    learner: Learner,
    roadmap_slug: str,
    topic: roadmaps.TopicRef | roadmaps.TopicPlace,
    current: repository.CurrentMark | None,
    status: str | None,
    confidence: int | None,
    *,
    undoes: ProgressEvent | None = None,
    now: datetime | None = None,
) -> Event:
    """Append the event and bring the projection (and review cards) in line with it."""
    now = now or learner.clock.now()
    before = current.status if current is not None else None
    stored_confidence = confidence if status is not None else None
    undoes_id = undoes.id if undoes is not None else None
    row = {
        "user_id": learner.user_id,
        "topic_id": topic.id,
        "roadmap_id": topic.roadmap_id,
        "from_status": before,
        "from_confidence": current.confidence if current is not None else None,
        "to_status": status,
        "confidence": stored_confidence,
        "occurred_at": now,
        "request_id": learner.request_id,
        "undoes_event_id": undoes_id,
    }
    event = Event(
        id=await repository.append_event(session, row),
        topic_id=topic.id,
        from_status=before,
        to_status=status,
        confidence=stored_confidence,
        occurred_at=now,
        request_id=learner.request_id,
        undoes_event_id=undoes_id,
    )
    if status is None:
        await repository.delete_mark(session, learner.user_id, topic.id)
    elif current is None:
        await repository.insert_mark(
            session,
            {
                "user_id": learner.user_id,
                "topic_id": topic.id,
                "status": status,
                "confidence": confidence,
                "updated_at": now,
                "last_event_id": event.id,
            },
        )
    else:
        await repository.update_mark(
            session,
            learner.user_id,
            topic.id,
            status=status,
            confidence=confidence,
            updated_at=now,
            last_event_id=event.id,
        )
    await _follow_change(session, learner, roadmap_slug, topic, before, status, event.id, now)
    return event


async def _follow_change(
    session: AsyncSession,
    learner: Learner,
    roadmap_slug: str,
    topic: roadmaps.TopicRef | roadmaps.TopicPlace,
    before: str | None,
    status: str | None,
    event_id: int,
    now: datetime,
    *,
    written: events.Event | None = None,
) -> None:
    """What follows from a recorded change: stale caches, review cards, the domain event
    (`written`: the one whose outbox row the change's own statement wrote)."""
    # Concept sharing carries a mark to other roadmaps' summaries: all of them are stale.
    stale_on_commit(session, cache_namespace(learner.user_id))
    await reviews.on_status_change(session, learner.user_id, topic.id, before, status, now)
    # Through the outbox, in this transaction: an event exactly when the change commits. The
    # roadmap's and the topic's slugs are the ones the change was found by, so what shows the
    # change live (realtime/live.py) need not look them up again. Written at once by a Core
    # statement: the unit of work then has nothing left to flush at commit.
    if written is not None:
        events.record_emitted(session, written)
        return
    data = _change_data(learner, roadmap_slug, topic, before, status, event_id)
    await events.emit_now(session, TOPIC_STATUS_CHANGED, at=now, data=data)


def _change_data(
    learner: Learner,
    roadmap_slug: str,
    topic: roadmaps.TopicRef | roadmaps.TopicPlace,
    before: str | None,
    status: str | None,
    event_id: int,
) -> dict[str, object]:
    """What a `topic.status_changed` event says."""
    return {
        "user_id": learner.user_id,
        "roadmap_id": topic.roadmap_id,
        "roadmap": roadmap_slug,
        "topic_id": topic.id,
        "topic": topic.slug,
        "from": before,
        "to": status,
        "progress_event_id": event_id,
    }


async def _progress_of(
    session: AsyncSession, user_id: int, tree: roadmaps.RoadmapTree[roadmaps.TopicRef]
) -> RoadmapProgress:
    topics = list(_topics_by_id(tree).values())
    profile = await profiles.get_profile(session, user_id)
    concept_of: dict[int, str] = {}
    if profile.share_progress_by_concept:
        concepts = [topic.concept for topic in topics if topic.concept]
        concept_of = await roadmaps.concept_topics(session, concepts) if concepts else {}
    ids = {topic.id for topic in topics} | set(concept_of)
    rows = await repository.marks(session, user_id, sorted(ids))
    marks = [_mark_of(row) for row in rows]
    own = {mark.topic_id: mark for mark in marks}
    shared = rollup.newest_by_concept(marks, concept_of) if concept_of else None
    chosen = rollup.choose_marks(topics, own, shared)
    return RoadmapProgress(tree.roadmap, rollup.roll_up(tree.sections, chosen))


def _topics_by_id(tree: roadmaps.RoadmapTree[roadmaps.TopicRef]) -> dict[int, roadmaps.TopicRef]:
    found: dict[int, roadmaps.TopicRef] = {}

    def walk(nodes: Sequence[roadmaps.TopicNode[roadmaps.TopicRef]]) -> None:
        for node in nodes:
            found[node.topic.id] = node.topic
            walk(node.children)

    walk(tree.sections)
    return found


def _import_targets(
    tree: roadmaps.RoadmapTree[roadmaps.TopicRef], marks: Sequence[ImportedMark]
) -> list[tuple[roadmaps.TopicRef, ImportedMark]]:
    by_id = _topics_by_id(tree)
    by_slug = {topic.slug: topic for topic in by_id.values()}
    targets: dict[int, tuple[roadmaps.TopicRef, ImportedMark]] = {}
    unknown: list[str] = []
    for entry in marks:
        topic = by_id.get(entry.topic_id) if entry.topic_id is not None else None
        topic = topic or (by_slug.get(entry.slug) if entry.slug else None)
        if topic is None:
            unknown.append(str(entry.slug or entry.topic_id))
        else:
            targets[topic.id] = (topic, entry)
    if unknown:
        raise InvalidProgressImport(
            f"The roadmap {tree.roadmap.slug!r} has no topic(s) {', '.join(unknown[:20])}.",
            unknown=unknown[:20],
        )
    return list(targets.values())


# Read models for the search index (another domain): what a note or a personal resource says,
# whose it is and where it hangs. Note and resource writes emit NOTE_CHANGED and RESOURCE_CHANGED.


@dataclass(frozen=True)
class NoteText:
    user_id: int
    topic_id: int
    roadmap_id: int
    markdown: str
    updated_at: datetime


@dataclass(frozen=True)
class ResourceText:
    resource_id: int
    user_id: int
    topic_id: int
    roadmap_id: int
    title: str
    url: str
    created_at: datetime


async def note_text(session: AsyncSession, user_id: int, topic_id: int) -> NoteText | None:
    row = await repository.note_text(session, user_id, topic_id)
    return None if row is None else (await _notes(session, [row]))[0]


async def note_texts_after(
    session: AsyncSession, after: tuple[int, int], limit: int
) -> list[NoteText]:
    """Notes in (user, topic) order strictly after `after`: a rebuild's batches."""
    return await _notes(session, await repository.note_texts_after(session, after, limit))


async def resource_text(session: AsyncSession, resource_id: int) -> ResourceText | None:
    row = await repository.resource_text(session, resource_id)
    return None if row is None else (await _resources(session, [row]))[0]


async def resource_texts_after(
    session: AsyncSession, after_id: int, limit: int
) -> list[ResourceText]:
    return await _resources(
        session, await repository.resource_texts_after(session, after_id, limit)
    )


async def _notes(
    session: AsyncSession, rows: Sequence[tuple[int, int, str, datetime]]
) -> list[NoteText]:
    roadmap_of = await roadmaps.roadmap_ids_of_topics(session, {row[1] for row in rows})
    return [
        NoteText(user_id, topic_id, roadmap_of[topic_id], markdown, updated_at)
        for user_id, topic_id, markdown, updated_at in rows
        if topic_id in roadmap_of
    ]


async def _resources(
    session: AsyncSession, rows: Sequence[tuple[int, int, int, str, str, datetime]]
) -> list[ResourceText]:
    roadmap_of = await roadmaps.roadmap_ids_of_topics(session, {row[2] for row in rows})
    return [
        ResourceText(resource_id, user_id, topic_id, roadmap_of[topic_id], title, url, created_at)
        for resource_id, user_id, topic_id, title, url, created_at in rows
        if topic_id in roadmap_of
    ]


async def count_notes_and_resources(session: AsyncSession) -> int:
    return await repository.count_notes_and_resources(session)


def topic_ids_with_status(user_id: int, statuses: Sequence[str]) -> Select[int]:
    """The topics the learner marked with one of `statuses`, as a subquery for other domains."""
    return repository.topic_ids_with_status(user_id, statuses)


# What the roadmaps domain asks of progress (roadmaps/progress_link.py), linked in app.py.


async def apply_marks_for(
    session: AsyncSession, writer: progress_link.Writer, slug: str, marks: Sequence[tuple[str, str]]
) -> int:
    checked = [(topic, cast(rollup.Status, status)) for topic, status in marks]
    return (await apply_checklist_marks(session, writer, slug, checked)).changed


async def carry_over_for(
    session: AsyncSession, writer: progress_link.Writer, from_slug: str, to_slug: str
) -> None:
    await carry_over(session, writer, from_slug, to_slug)
