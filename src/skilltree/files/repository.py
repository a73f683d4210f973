"""Every query of the files domain; each one is scoped to the owner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.files.models import ImageVariant, ResumableUpload, StoredFile
from skilltree.platform.queue.models import OutboxMessage


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


def add(session: AsyncSession, row: StoredFile | ResumableUpload | ImageVariant) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def delete_rows(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        # Variants first: the foreign key cascades, but SQLite enforces it only when asked.
        await session.execute(delete(ImageVariant).where(ImageVariant.file_id.in_(list(ids))))
        await session.execute(delete(StoredFile).where(StoredFile.id.in_(list(ids))))


async def reserved_bytes(session: AsyncSession, user_id: int, now: datetime) -> int:
    """Bytes promised to uploads still in progress: counted against the quota at creation."""
    query = select(func.coalesce(func.sum(ResumableUpload.length), 0)).where(
        ResumableUpload.user_id == user_id,
        ResumableUpload.file_id.is_(None),
        ResumableUpload.expires_at > now,
    )
    return int((await session.execute(query)).scalar_one())


async def owned_upload(
    session: AsyncSession, user_id: int, upload_id: str
) -> ResumableUpload | None:
    # The owner is part of the key: a stranger's upload is not found, not forbidden.
    query = select(ResumableUpload).where(
        ResumableUpload.id == upload_id, ResumableUpload.user_id == user_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def advance_upload(
    session: AsyncSession, upload_id: str, expected: int, received: int, parts: list[str]
) -> bool:
    """Move the offset on from `expected`; False if another request moved it first."""
    result = await session.execute(
        update(ResumableUpload)
        .where(ResumableUpload.id == upload_id, ResumableUpload.received == expected)
        .values(received=received, parts=parts)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def finish_upload(session: AsyncSession, upload_id: str, file_id: int) -> None:
    await session.execute(
        update(ResumableUpload)
        .where(ResumableUpload.id == upload_id)
        .values(file_id=file_id, parts=[])
        .execution_options(synchronize_session=False)
    )


async def delete_upload(session: AsyncSession, upload_id: str) -> None:
    await session.execute(delete(ResumableUpload).where(ResumableUpload.id == upload_id))


async def expired_uploads(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[ResumableUpload]:
    query = (
        select(ResumableUpload)
        .where(ResumableUpload.expires_at <= now)
        .order_by(ResumableUpload.expires_at)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def uploads_of(session: AsyncSession, user_id: int) -> Sequence[ResumableUpload]:
    query = select(ResumableUpload).where(ResumableUpload.user_id == user_id)
    return (await session.execute(query)).scalars().all()


async def files_of(session: AsyncSession, user_id: int) -> Sequence[StoredFile]:
    query = select(StoredFile).where(StoredFile.user_id == user_id).order_by(StoredFile.id)
    return (await session.execute(query)).scalars().all()


async def by_id(session: AsyncSession, file_id: int) -> StoredFile | None:
    return await session.get(StoredFile, file_id)


async def files_of_kind(session: AsyncSession, user_id: int, kind: str) -> Sequence[StoredFile]:
    query = (
        select(StoredFile)
        .where(StoredFile.user_id == user_id, StoredFile.kind == kind)
        .order_by(StoredFile.id)
    )
    return (await session.execute(query)).scalars().all()


async def variants_of(session: AsyncSession, file_ids: Sequence[int]) -> Sequence[ImageVariant]:
    if not file_ids:
        return []
    query = (
        select(ImageVariant)
        .where(ImageVariant.file_id.in_(list(file_ids)))
        .order_by(ImageVariant.file_id, ImageVariant.name)
    )
    return (await session.execute(query)).scalars().all()


async def variant(session: AsyncSession, file_id: int, name: str) -> ImageVariant | None:
    query = select(ImageVariant).where(ImageVariant.file_id == file_id, ImageVariant.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def variant_by_key(session: AsyncSession, key: str) -> ImageVariant | None:
    query = select(ImageVariant).where(ImageVariant.key == key)
    return (await session.execute(query)).scalar_one_or_none()


def _missing_variants(types: Sequence[str], wanted: dict[str, int]) -> list[Any]:
    """Images with fewer variants than their kind gets (none made yet, or some lost)."""
    made = (
        select(func.count(ImageVariant.id))
        .where(ImageVariant.file_id == StoredFile.id)
        .scalar_subquery()
    )
    expected = case(*[(StoredFile.kind == kind, count) for kind, count in wanted.items()], else_=0)
    return [StoredFile.content_type.in_(list(types)), made < expected]


async def count_missing_variants(
    session: AsyncSession, types: Sequence[str], wanted: dict[str, int]
) -> int:
    query = select(func.count(StoredFile.id)).where(*_missing_variants(types, wanted))
    return int((await session.execute(query)).scalar_one())


async def missing_variants_after(
    session: AsyncSession, types: Sequence[str], wanted: dict[str, int], after_id: int, limit: int
) -> Sequence[StoredFile]:
    """The next images (by id) missing some of their variants, across every user."""
    query = (
        select(StoredFile)
        .where(StoredFile.id > after_id, *_missing_variants(types, wanted))
        .order_by(StoredFile.id)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def queued_message_ids(session: AsyncSession, message_ids: Sequence[str]) -> set[str]:
    """Which of these outbox message ids exist (queued, or published and not yet cleaned up)."""
    if not message_ids:
        return set()
    query = select(OutboxMessage.message_id).where(OutboxMessage.message_id.in_(list(message_ids)))
    return set((await session.execute(query)).scalars().all())
