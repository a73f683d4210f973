"""Every query of feature flags."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.flags.models import FeatureFlag, FlagOverride


async def all_flags(session: AsyncSession) -> Sequence[FeatureFlag]:
    return (await session.scalars(select(FeatureFlag).order_by(FeatureFlag.key))).all()


async def all_overrides(session: AsyncSession) -> Sequence[FlagOverride]:
    query = select(FlagOverride).order_by(
        FlagOverride.flag_id, FlagOverride.subject, FlagOverride.subject_id
    )
    return (await session.scalars(query)).all()


async def flag_by_key(session: AsyncSession, key: str) -> FeatureFlag | None:
    return await session.scalar(select(FeatureFlag).where(FeatureFlag.key == key))


async def overrides_of(session: AsyncSession, flag_id: int) -> Sequence[FlagOverride]:
    query = (
        select(FlagOverride)
        .where(FlagOverride.flag_id == flag_id)
        .order_by(FlagOverride.subject, FlagOverride.subject_id)
    )
    return (await session.scalars(query)).all()


async def override(
    session: AsyncSession, flag_id: int, subject: str, subject_id: int
) -> FlagOverride | None:
    return await session.get(FlagOverride, (flag_id, subject, subject_id))


def add(session: AsyncSession, row: FeatureFlag | FlagOverride) -> None:
    session.add(row)


async def remove_override(session: AsyncSession, row: FlagOverride) -> None:
    await session.delete(row)


async def remove_flag(session: AsyncSession, flag: FeatureFlag) -> None:
    # The overrides go with it (ON DELETE CASCADE); deleted explicitly too, for SQLite
    # connections without foreign-key enforcement.
    await session.execute(delete(FlagOverride).where(FlagOverride.flag_id == flag.id))
    await session.delete(flag)
