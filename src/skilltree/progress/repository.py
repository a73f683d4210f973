"""Every query of the progress domain. Each one is scoped to one user: a learner's events,
projection rows, notes and resources are reachable only with their own user id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.db import is_mysql
from skilltree.platform.pagination import Keyset, Position, page_query
from skilltree.progress.models import PersonalResource, ProgressEvent, TopicNote, TopicProgress
from skilltree.roadmaps.models import Topic

# Any constant works: it namespaces the advisory locks this domain takes (see lock_learner).
PROGRESS_LOCK_SPACE = 4_711

HISTORY_ORDER = Keyset(ProgressEvent.occurred_at, ProgressEvent.id, descending=True)


async def lock_learner(session: AsyncSession, user_id: int) -> None:
    """Serialise one learner's progress writes until the transaction ends.

    Each write reads the current status, appends an event and updates the projection; two
    concurrent writes for one learner could otherwise both read the same "before" and leave a
    log whose replay disagrees with the projection. SQLite already allows one writer at a time.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(PROGRESS_LOCK_SPACE, user_id)))
    elif is_mysql(dialect):
        # MySQL's named locks (GET_LOCK) belong to the connection, not the transaction, and a
        # pooled connection would keep one after a failed request. The learner's own account
        # row, locked until the transaction ends, serialises the same writes.
        await session.execute(
            text("SELECT id FROM users WHERE id = :user_id FOR UPDATE"), {"user_id": user_id}
        )


async def marks(
    session: AsyncSession, user_id: int, topic_ids: Sequence[int]
) -> Sequence[TopicProgress]:
    if not topic_ids:
        return []
    query = select(TopicProgress).where(
        TopicProgress.user_id == user_id, TopicProgress.topic_id.in_(list(topic_ids))
    )
    return (await session.execute(query)).scalars().all()


async def mark(session: AsyncSession, user_id: int, topic_id: int) -> TopicProgress | None:
    return await session.get(TopicProgress, (user_id, topic_id))


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


# What the search index copies: notes and resources with their topic's roadmap, walked in key
# order so a rebuild reads each row once in bounded batches.


def _note_texts() -> Select[int, int, int, str, datetime]:
    return select(
        TopicNote.user_id,
        TopicNote.topic_id,
        Topic.roadmap_id,
        TopicNote.markdown,
        TopicNote.updated_at,
    ).join(Topic, Topic.id == TopicNote.topic_id)


def _resource_texts() -> Select[int, int, int, int, str, str, datetime]:
    return select(
        PersonalResource.id,
        PersonalResource.user_id,
        PersonalResource.topic_id,
        Topic.roadmap_id,
        PersonalResource.title,
        PersonalResource.url,
        PersonalResource.created_at,
    ).join(Topic, Topic.id == PersonalResource.topic_id)


async def note_text(
    session: AsyncSession, user_id: int, topic_id: int
) -> tuple[int, int, int, str, datetime] | None:
    query = _note_texts().where(TopicNote.user_id == user_id, TopicNote.topic_id == topic_id)
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])


async def note_texts_after(
    session: AsyncSession, after: tuple[int, int], limit: int
) -> list[tuple[int, int, int, str, datetime]]:
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
    return [(r[0], r[1], r[2], r[3], r[4]) for r in (await session.execute(query)).all()]


async def resource_text(
    session: AsyncSession, resource_id: int
) -> tuple[int, int, int, int, str, str, datetime] | None:
    row = (
        await session.execute(_resource_texts().where(PersonalResource.id == resource_id))
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def resource_texts_after(
    session: AsyncSession, after_id: int, limit: int
) -> list[tuple[int, int, int, int, str, str, datetime]]:
    query = (
        _resource_texts()
        .where(PersonalResource.id > after_id)
        .order_by(PersonalResource.id)
        .limit(limit)
    )
    return [
        (r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in (await session.execute(query)).all()
    ]


async def count_notes_and_resources(session: AsyncSession) -> int:
    notes = (await session.execute(select(func.count()).select_from(TopicNote))).scalar_one()
    links = (await session.execute(select(func.count()).select_from(PersonalResource))).scalar_one()
    return int(notes) + int(links)


def topic_ids_with_status(user_id: int, statuses: Sequence[str]) -> Select[int]:
    return select(TopicProgress.topic_id).where(
        TopicProgress.user_id == user_id, TopicProgress.status.in_(list(statuses))
    )
