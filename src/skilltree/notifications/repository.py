"""Every query of the notifications domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.notifications.models import NotificationPreference


async def preferences_of(session: AsyncSession, user_id: int) -> NotificationPreference | None:
    return await session.get(NotificationPreference, user_id)


async def opted_out(session: AsyncSession, topic: str) -> set[int]:
    """The users who turned `topic` off; no row means the defaults, which are on."""
    wanted = getattr(NotificationPreference, topic)
    query = select(NotificationPreference.user_id).where(wanted.is_(False))
    return set((await session.execute(query)).scalars())


def add(session: AsyncSession, row: NotificationPreference) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()
