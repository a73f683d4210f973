"""Every query of the progress domain. Each one is scoped to one user: a learner's events,
projection rows, notes and resources are reachable only with their own user id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import (
    CursorResult,
    Integer,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.db import is_mysql
from skilltree.platform.pagination import Keyset, Position, page_query
from skilltree.progress.models import PersonalResource, ProgressEvent, TopicNote, TopicProgress

# Any constant works: it namespaces the advisory locks this domain takes (see lock_learner).
PROGRESS_LOCK_SPACE = 4_711

HISTORY_ORDER = Keyset(ProgressEvent.occurred_at, ProgressEvent.id, descending=True)

# The write path's statements, on the tables' own columns and built once: executed as Core
# statements, they skip the ORM's per-statement work (identity map, unit-of-work flush, building
# the expression again on every call), which was most of a status change's CPU beyond the
# round trips themselves.
_EVENTS_TABLE = cast(Table, ProgressEvent.__table__)
_MARKS_TABLE = cast(Table, TopicProgress.__table__)
_MARKS = _MARKS_TABLE.c
_CURRENT_MARK = select(_MARKS.status, _MARKS.confidence, _MARKS.updated_at).where(
    _MARKS.user_id == bindparam("user_id"), _MARKS.topic_id == bindparam("topic_id")
)
_APPEND_EVENT = insert(_EVENTS_TABLE)
_INSERT_MARK = insert(_MARKS_TABLE)
# The columns to set come from the parameters' names; the key's parameters have names of
# their own (a bound parameter may not share a name with a column the statement sets).
_UPDATE_MARK = update(_MARKS_TABLE).where(
    _MARKS.user_id == bindparam("mark_user_id"), _MARKS.topic_id == bindparam("mark_topic_id")
)


_LOCK_LEARNER = select(
    func.pg_advisory_xact_lock(PROGRESS_LOCK_SPACE, bindparam("user_id", type_=Integer))
)


class CurrentMark(NamedTuple):
    """A learner's own mark on a topic as the projection holds it: what a write starts from."""

    status: str
    confidence: int | None
    updated_at: datetime


async def lock_learner(session: AsyncSession, user_id: int) -> None:
    """Serialise one learner's progress writes until the transaction ends.

    Each write reads the current status, appends an event and updates the projection; two
    concurrent writes for one learner could otherwise both read the same "before" and leave a
    log whose replay disagrees with the projection. SQLite already allows one writer at a time.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(_LOCK_LEARNER, {"user_id": user_id})
    elif is_mysql(dialect):
        # MySQL's named locks (GET_LOCK) belong to the connection, not the transaction, and a
        # pooled connection would keep one after a failed request. The learner's own account
        # row, locked until the transaction ends, serialises the same writes.
        await session.execute(
            text("SELECT id FROM users WHERE id = :user_id FOR UPDATE"), {"user_id": user_id}
        )


# A status change on PostgreSQL, in one round trip under the learner's lock: read the mark,
# append the event that starts from it (none when the status and confidence are those already
# held), bring the projection row in line with it, and write the domain event's outbox row
# (platform/events.py `outbox_row`) with the mark it started from and the new event's id filled
# in, only when an event was appended. The lock is taken by the statement before: in READ
# COMMITTED a statement sees what was committed when it began, so the read must begin once the
# lock is held (decisions 0063, 0073).
_CHANGE_MARK = text(
    """
WITH given AS (
    SELECT CAST(:user_id AS INTEGER) AS user_id, CAST(:topic_id AS INTEGER) AS topic_id,
           CAST(:status AS VARCHAR) AS status, CAST(:confidence AS INTEGER) AS confidence,
           CAST(:occurred_at AS TIMESTAMP WITH TIME ZONE) AS occurred_at
), held AS (
    SELECT mark.status, mark.confidence, mark.updated_at
    FROM topic_progress AS mark, given
    WHERE mark.user_id = given.user_id AND mark.topic_id = given.topic_id
), appended AS (
    INSERT INTO progress_events (user_id, topic_id, roadmap_id, from_status, from_confidence,
                                 to_status, confidence, occurred_at, request_id)
    SELECT given.user_id, given.topic_id, CAST(:roadmap_id AS INTEGER),
           (SELECT status FROM held), (SELECT confidence FROM held), given.status,
           given.confidence, given.occurred_at, CAST(:request_id AS VARCHAR)
    FROM given
    WHERE NOT EXISTS (
        SELECT 1 FROM held
        WHERE held.status = given.status AND held.confidence IS NOT DISTINCT FROM given.confidence
    )
    RETURNING id
), projected AS (
    INSERT INTO topic_progress (user_id, topic_id, status, confidence, updated_at, last_event_id)
    SELECT given.user_id, given.topic_id, given.status, given.confidence, given.occurred_at,
           appended.id
    FROM given, appended
    ON CONFLICT (user_id, topic_id) DO UPDATE SET
        status = EXCLUDED.status, confidence = EXCLUDED.confidence,
        updated_at = EXCLUDED.updated_at, last_event_id = EXCLUDED.last_event_id
), queued AS (
    INSERT INTO outbox_messages (message_id, task_name, args, labels, created_at, available_at)
    SELECT CAST(:message_id AS VARCHAR), CAST(:task_name AS VARCHAR),
           jsonb_set(
               CAST(:args AS JSONB), '{0,data}',
               (CAST(:args AS JSONB) -> 0 -> 'data')
               || jsonb_build_object('from', (SELECT status FROM held), 'progress_event_id',
                                     appended.id)
           ),
           CAST(:labels AS JSONB), CAST(:created_at AS TIMESTAMP WITH TIME ZONE),
           CAST(:available_at AS TIMESTAMP WITH TIME ZONE)
    FROM appended
)
SELECT (SELECT id FROM appended), held.status, held.confidence, held.updated_at
FROM given LEFT JOIN held ON true
"""
)


class Change(NamedTuple):
    """What `change_mark` did: the new event's id (None when nothing changed) and the mark the
    change started from (None for the topic's first)."""

    event_id: int | None
    before: CurrentMark | None


def changes_in_one_statement(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def change_mark(
    session: AsyncSession,
    user_id: int,
    topic_id: int,
    roadmap_id: int,
    *,
    status: str,
    confidence: int | None,
    occurred_at: datetime,
    request_id: str | None,
    message: dict[str, Any],
) -> Change:
    """`current_mark`, `append_event`, the projection's insert or update and the outbox row
    `message` (written only with an event; its event's `from` and `progress_event_id` are
    filled in) in one statement (PostgreSQL; `changes_in_one_statement`). The learner's lock
    must be held."""
    parameters = {
        "user_id": user_id,
        "topic_id": topic_id,
        "roadmap_id": roadmap_id,
        "status": status,
        "confidence": confidence,
        "occurred_at": occurred_at,
        "request_id": request_id,
        **message,
        "args": orjson.dumps(message["args"]).decode(),
        "labels": orjson.dumps(message["labels"]).decode(),
    }
    row = (await session.execute(_CHANGE_MARK, parameters)).one()
    before = None if row[1] is None else CurrentMark(row[1], row[2], row[3])
    return Change(row[0], before)


async def marks(
    session: AsyncSession, user_id: int, topic_ids: Sequence[int]
) -> Sequence[TopicProgress]:
    if not topic_ids:
        return []
    query = select(TopicProgress).where(
        TopicProgress.user_id == user_id, TopicProgress.topic_id.in_(list(topic_ids))
    )
    return (await session.execute(query)).scalars().all()


async def current_mark(session: AsyncSession, user_id: int, topic_id: int) -> CurrentMark | None:
    row = (await session.execute(_CURRENT_MARK, {"user_id": user_id, "topic_id": topic_id})).first()
    return None if row is None else CurrentMark(row[0], row[1], row[2])


async def current_marks(
    session: AsyncSession, user_id: int, topic_ids: Sequence[int]
) -> dict[int, CurrentMark]:
    """`current_mark` of several topics, by topic id (an import compares each entry with it)."""
    if not topic_ids:
        return {}
    query = select(_MARKS.topic_id, _MARKS.status, _MARKS.confidence, _MARKS.updated_at).where(
        _MARKS.user_id == user_id, _MARKS.topic_id.in_(list(topic_ids))
    )
    return {row[0]: CurrentMark(row[1], row[2], row[3]) for row in await session.execute(query)}


async def append_event(session: AsyncSession, values: dict[str, Any]) -> int:
    """Insert a progress event; returns its id (PostgreSQL answers it in the same round trip)."""
    result = cast(CursorResult[Any], await session.execute(_APPEND_EVENT, values))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def insert_mark(session: AsyncSession, values: dict[str, Any]) -> None:
    """The first mark of a topic: a new projection row (the learner's lock is held)."""
    await session.execute(_INSERT_MARK, values)


async def update_mark(
    session: AsyncSession,
    user_id: int,
    topic_id: int,
    *,
    status: str,
    confidence: int | None,
    updated_at: datetime,
    last_event_id: int,
) -> None:
    await session.execute(
        _UPDATE_MARK,
        {
            "mark_user_id": user_id,
            "mark_topic_id": topic_id,
            "status": status,
            "confidence": confidence,
            "updated_at": updated_at,
            "last_event_id": last_event_id,
        },
    )


async def last_undoable(
    session: AsyncSession, user_id: int, roadmap_id: int
) -> ProgressEvent | None:
    """The newest change on the roadmap that is neither an undo nor undone already."""
    undone = select(ProgressEvent.undoes_event_id).where(
        ProgressEvent.user_id == user_id, ProgressEvent.undoes_event_id.is_not(None)
    )
    query = (
        select(ProgressEvent)
        .where(
            ProgressEvent.user_id == user_id,
            ProgressEvent.roadmap_id == roadmap_id,
            ProgressEvent.undoes_event_id.is_(None),
            ProgressEvent.id.not_in(undone),
        )
        .order_by(ProgressEvent.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def history_page(
    session: AsyncSession, user_id: int, roadmap_id: int, position: Position | None, limit: int
) -> Sequence[ProgressEvent]:
    query = select(ProgressEvent).where(
        ProgressEvent.user_id == user_id, ProgressEvent.roadmap_id == roadmap_id
    )
    return (
        (await session.execute(page_query(query, HISTORY_ORDER, position, limit))).scalars().all()
    )


async def events_of(session: AsyncSession, user_id: int) -> Sequence[ProgressEvent]:
    """A learner's whole log in the order it was written (for replay and its tests)."""
    query = select(ProgressEvent).where(ProgressEvent.user_id == user_id).order_by(ProgressEvent.id)
    return (await session.execute(query)).scalars().all()


async def all_marks(session: AsyncSession, user_id: int) -> Sequence[TopicProgress]:
    query = select(TopicProgress).where(TopicProgress.user_id == user_id)
    return (await session.execute(query)).scalars().all()


async def activity_since(
    session: AsyncSession, user_id: int, since: datetime | None = None
) -> Sequence[datetime]:
    query = select(ProgressEvent.occurred_at).where(ProgressEvent.user_id == user_id)
    if since is not None:
        query = query.where(ProgressEvent.occurred_at >= since)
    return (await session.execute(query)).scalars().all()


async def delete_mark(session: AsyncSession, user_id: int, topic_id: int) -> None:
    await session.execute(
        delete(TopicProgress).where(
            TopicProgress.user_id == user_id, TopicProgress.topic_id == topic_id
        )
    )


async def note(session: AsyncSession, user_id: int, topic_id: int) -> TopicNote | None:
    return await session.get(TopicNote, (user_id, topic_id))


async def delete_note(session: AsyncSession, user_id: int, topic_id: int) -> None:
    await session.execute(
        delete(TopicNote).where(TopicNote.user_id == user_id, TopicNote.topic_id == topic_id)
    )


async def resources(
    session: AsyncSession, user_id: int, topic_id: int
) -> Sequence[PersonalResource]:
    query = (
        select(PersonalResource)
        .where(PersonalResource.user_id == user_id, PersonalResource.topic_id == topic_id)
        .order_by(PersonalResource.id)
    )
    return (await session.execute(query)).scalars().all()


async def delete_resource(
    session: AsyncSession, user_id: int, topic_id: int, resource_id: int
) -> bool:
    result: Any = await session.execute(
        delete(PersonalResource).where(
            PersonalResource.id == resource_id,
            PersonalResource.user_id == user_id,
            PersonalResource.topic_id == topic_id,
        )
    )
    return bool(result.rowcount)


def add(
    session: AsyncSession, row: ProgressEvent | TopicProgress | TopicNote | PersonalResource
) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def done_between(
    session: AsyncSession, user_id: int, since: datetime, until: datetime
) -> Sequence[int]:
    """The topics the user finished in [since, until) and still counts as done, in the order
    they were finished."""
    query = (
        select(TopicProgress.topic_id)
        .where(TopicProgress.user_id == user_id, TopicProgress.status == "done")
        .where(TopicProgress.updated_at >= since, TopicProgress.updated_at < until)
        .order_by(TopicProgress.updated_at, TopicProgress.topic_id)
    )
    return (await session.execute(query)).scalars().all()


# What the search index copies: notes and resources (their roadmaps come from the roadmaps
# domain), walked in key
# order so a rebuild reads each row once in bounded batches.


def _note_texts() -> Select[int, int, str, datetime]:
    return select(TopicNote.user_id, TopicNote.topic_id, TopicNote.markdown, TopicNote.updated_at)


def _resource_texts() -> Select[int, int, int, str, str, datetime]:
    return select(
        PersonalResource.id,
        PersonalResource.user_id,
        PersonalResource.topic_id,
        PersonalResource.title,
        PersonalResource.url,
        PersonalResource.created_at,
    )


async def note_text(
    session: AsyncSession, user_id: int, topic_id: int
) -> tuple[int, int, str, datetime] | None:
    query = _note_texts().where(TopicNote.user_id == user_id, TopicNote.topic_id == topic_id)
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


async def note_texts_after(
    session: AsyncSession, after: tuple[int, int], limit: int
) -> list[tuple[int, int, str, datetime]]:
    user_id, topic_id = after
    query = (
        _note_texts()
        .where(
            (TopicNote.user_id > user_id)
            | ((TopicNote.user_id == user_id) & (TopicNote.topic_id > topic_id))
        )
        .order_by(TopicNote.user_id, TopicNote.topic_id)
        .limit(limit)
    )
    return [(r[0], r[1], r[2], r[3]) for r in (await session.execute(query)).all()]


async def resource_text(
    session: AsyncSession, resource_id: int
) -> tuple[int, int, int, str, str, datetime] | None:
    row = (
        await session.execute(_resource_texts().where(PersonalResource.id == resource_id))
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4], row[5])


async def resource_texts_after(
    session: AsyncSession, after_id: int, limit: int
) -> list[tuple[int, int, int, str, str, datetime]]:
    query = (
        _resource_texts()
        .where(PersonalResource.id > after_id)
        .order_by(PersonalResource.id)
        .limit(limit)
    )
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in (await session.execute(query)).all()]


async def count_notes_and_resources(session: AsyncSession) -> int:
    notes = (await session.execute(select(func.count()).select_from(TopicNote))).scalar_one()
    links = (await session.execute(select(func.count()).select_from(PersonalResource))).scalar_one()
    return int(notes) + int(links)


def topic_ids_with_status(user_id: int, statuses: Sequence[str]) -> Select[int]:
    return select(TopicProgress.topic_id).where(
        TopicProgress.user_id == user_id, TopicProgress.status.in_(list(statuses))
    )
