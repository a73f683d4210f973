"""Queries of the audit log: insert and read, nothing else."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.audit.models import SecurityEvent


def add(session: AsyncSession, event: SecurityEvent) -> None:
    session.add(event)


async def latest_for_org(session: AsyncSession, org_id: int, limit: int) -> Sequence[SecurityEvent]:
    query = (
        select(SecurityEvent)
        .where(SecurityEvent.org_id == org_id)
        .order_by(SecurityEvent.id.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def latest_for_user(
    session: AsyncSession, user_id: int, limit: int
) -> Sequence[SecurityEvent]:
    query = (
        select(SecurityEvent)
        .where(SecurityEvent.user_id == user_id)
        .order_by(SecurityEvent.id.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()
