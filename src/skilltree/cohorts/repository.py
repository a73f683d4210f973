"""Every query of the cohorts domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.cohorts.models import Activity, Assignment, AssignmentCompletion, SharingChoice
from skilltree.platform.db import is_mysql
from skilltree.platform.pagination import Keyset, Position, page_query

FEED_ORDER = Keyset(Activity.id, Activity.id, descending=True)


def add(session: AsyncSession, row: Assignment | AssignmentCompletion | SharingChoice) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def record_activity(session: AsyncSession, values: dict[str, Any]) -> Activity | None:
    """Insert a feed line unless this (organisation, event) already has one; the new row, or
    None for a duplicate (the projection runs at least once per event)."""
    if is_mysql(session.get_bind().dialect.name):
        # No RETURNING on MariaDB/MySQL: INSERT IGNORE skips the duplicate, and the row count
        # and the last insert id say whether a row was added.
        from sqlalchemy.dialects.mysql import insert as mysql_insert  # only on MariaDB/MySQL

        ignored = mysql_insert(Activity).values(**values).prefix_with("IGNORE")
        result = cast(CursorResult[Any], await session.execute(ignored))
        key = result.inserted_primary_key
        if not result.rowcount or key is None:
            return None
        return await session.get(Activity, key[0])
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = (
        insert(Activity)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["org_id", "event_id"])
        .returning(Activity.id)
    )
    new_id = (await session.execute(statement)).scalar_one_or_none()
    return None if new_id is None else await session.get(Activity, new_id)


async def feed_page(
    session: AsyncSession, org_id: int, position: Position | None, limit: int
) -> Sequence[Activity]:
    query = page_query(
        select(Activity).where(Activity.org_id == org_id), FEED_ORDER, position, limit
    )
    return (await session.execute(query)).scalars().all()


async def assignments_of_org(session: AsyncSession, org_id: int) -> Sequence[Assignment]:
    query = select(Assignment).where(Assignment.org_id == org_id).order_by(Assignment.id)
    return (await session.execute(query)).scalars().all()


async def assignments_for(
    session: AsyncSession, user_id: int, org_ids: Sequence[int], roadmap_id: int | None = None
) -> Sequence[Assignment]:
    """Assignments addressed to the user, or to a whole organisation they belong to."""
    query = select(Assignment).where(
        Assignment.org_id.in_(list(org_ids)),
        or_(Assignment.assignee_id == user_id, Assignment.assignee_id.is_(None)),
    )
    if roadmap_id is not None:
        query = query.where(Assignment.roadmap_id == roadmap_id)
    return (await session.execute(query.order_by(Assignment.id))).scalars().all()


async def get_assignment(
    session: AsyncSession, org_id: int, assignment_id: int
) -> Assignment | None:
    query = select(Assignment).where(Assignment.org_id == org_id, Assignment.id == assignment_id)
    return (await session.execute(query)).scalar_one_or_none()


async def delete_assignment(session: AsyncSession, assignment_id: int) -> None:
    await session.execute(delete(Assignment).where(Assignment.id == assignment_id))


async def completions(
    session: AsyncSession, assignment_ids: Sequence[int]
) -> Sequence[AssignmentCompletion]:
    if not assignment_ids:
        return []
    query = select(AssignmentCompletion).where(
        AssignmentCompletion.assignment_id.in_(list(assignment_ids))
    )
    return (await session.execute(query)).scalars().all()


async def complete_once(
    session: AsyncSession, assignment_id: int, user_id: int, at: datetime
) -> bool:
    """Record a completion; False when it was recorded before."""
    values = {"assignment_id": assignment_id, "user_id": user_id, "completed_at": at}
    dialect = session.get_bind().dialect.name
    if is_mysql(dialect):
        from sqlalchemy.dialects.mysql import insert as mysql_insert  # only on MariaDB/MySQL

        statement: Any = mysql_insert(AssignmentCompletion).values(**values).prefix_with("IGNORE")
    else:
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = insert(AssignmentCompletion).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def due_before(
    session: AsyncSession, horizon: datetime, now: datetime
) -> Sequence[Assignment]:
    """Assignments due between now and the horizon whose reminder has not gone out."""
    query = (
        select(Assignment)
        .where(
            Assignment.due_at.is_not(None),
            Assignment.due_at > now,
            Assignment.due_at <= horizon,
            Assignment.reminded_at.is_(None),
        )
        .order_by(Assignment.due_at, Assignment.id)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


async def sharing_choices(session: AsyncSession, org_id: int) -> dict[int, bool]:
    query = select(SharingChoice).where(SharingChoice.org_id == org_id)
    return {row.user_id: row.share_details for row in (await session.execute(query)).scalars()}


async def sharing_choice(session: AsyncSession, org_id: int, user_id: int) -> SharingChoice | None:
    return await session.get(SharingChoice, (org_id, user_id))
