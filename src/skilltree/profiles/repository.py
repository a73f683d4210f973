"""Every query of the profiles domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.profiles.models import Profile


async def get(session: AsyncSession, user_id: int) -> Profile | None:
    return await session.get(Profile, user_id)


async def get_by_handle(session: AsyncSession, handle: str) -> Profile | None:
    query = select(Profile).where(Profile.handle == handle)
    return (await session.execute(query)).scalar_one_or_none()


def add(session: AsyncSession, profile: Profile) -> None:
    session.add(profile)


async def flush(session: AsyncSession) -> None:
    await session.flush()
