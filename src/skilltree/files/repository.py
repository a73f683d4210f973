"""Every query of the files domain; each one is scoped to the owner."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files.models import StoredFile


async def used_bytes(session: AsyncSession, user_id: int) -> int:
    query = select(func.coalesce(func.sum(StoredFile.size), 0)).where(StoredFile.user_id == user_id)
    return int((await session.execute(query)).scalar_one())


async def attachments(session: AsyncSession, user_id: int, topic_id: int) -> Sequence[StoredFile]:
    query = (
        select(StoredFile)
        .where(StoredFile.user_id == user_id, StoredFile.topic_id == topic_id)
        .order_by(StoredFile.id)
    )
    return (await session.execute(query)).scalars().all()


async def by_key(session: AsyncSession, key: str) -> StoredFile | None:
    return (
        await session.execute(select(StoredFile).where(StoredFile.key == key))
    ).scalar_one_or_none()


async def owned(session: AsyncSession, user_id: int, file_id: int) -> StoredFile | None:
    query = select(StoredFile).where(StoredFile.id == file_id, StoredFile.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


def add(session: AsyncSession, row: StoredFile) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def delete_rows(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(delete(StoredFile).where(StoredFile.id.in_(list(ids))))
