"""Every query of the reviews domain, each scoped to one learner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.pagination import Keyset, Position, page_query
from skilltree.reviews.models import ReviewCard, ReviewLogEntry

# Oldest due first; the id orders cards due at the same instant.
DUE_ORDER = Keyset(ReviewCard.due, ReviewCard.id)


async def active_card(session: AsyncSession, user_id: int, card_id: int) -> ReviewCard | None:
    query = select(ReviewCard).where(
        ReviewCard.id == card_id, ReviewCard.user_id == user_id, ReviewCard.retired_at.is_(None)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def has_active_card(session: AsyncSession, user_id: int, topic_id: int) -> bool:
    query = select(ReviewCard.id).where(
        ReviewCard.user_id == user_id,
        ReviewCard.topic_id == topic_id,
        ReviewCard.retired_at.is_(None),
    )
    return (await session.execute(query.limit(1))).first() is not None


async def retire_cards(session: AsyncSession, user_id: int, topic_id: int, now: datetime) -> None:
    await session.execute(
        update(ReviewCard)
        .where(
            ReviewCard.user_id == user_id,
            ReviewCard.topic_id == topic_id,
            ReviewCard.retired_at.is_(None),
        )
        .values(retired_at=now)
    )


class ListedCard(NamedTuple):
    """A card as the due list shows it: its id, its topic and when it came due."""

    id: int
    topic_id: int
    due: datetime


async def due_page(
    session: AsyncSession, user_id: int, now: datetime, position: Position | None, limit: int
) -> list[ListedCard]:
    # Only what the list shows, as tuples: the scheduler's state (a JSON document per card)
    # is read to rate a card, never to list one, and no ORM object is built per row.
    query = select(ReviewCard.id, ReviewCard.topic_id, ReviewCard.due).where(
        ReviewCard.user_id == user_id, ReviewCard.retired_at.is_(None), ReviewCard.due <= now
    )
    rows = (await session.execute(page_query(query, DUE_ORDER, position, limit))).all()
    return [ListedCard(card_id, topic_id, due) for card_id, topic_id, due in rows]


async def log_of(session: AsyncSession, card_id: int) -> Sequence[ReviewLogEntry]:
    query = (
        select(ReviewLogEntry).where(ReviewLogEntry.card_id == card_id).order_by(ReviewLogEntry.id)
    )
    return (await session.execute(query)).scalars().all()


def add(session: AsyncSession, row: ReviewCard | ReviewLogEntry) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def due_counts(session: AsyncSession, now: datetime) -> dict[int, int]:
    """User id -> how many of their active cards are due (for the daily reminder)."""
    query = (
        select(ReviewCard.user_id, func.count())
        .where(ReviewCard.retired_at.is_(None), ReviewCard.due <= now)
        .group_by(ReviewCard.user_id)
    )
    return {user_id: int(count) for user_id, count in (await session.execute(query)).all()}
