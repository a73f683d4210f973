"""Feeds the daily review reminder (notifications.tasks) with each learner's due count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.reviews import repository


async def due_reviews(session: AsyncSession, now: datetime) -> dict[int, int]:
    return await repository.due_counts(session, now)
