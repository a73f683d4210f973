"""Every query of the reviews domain, each scoped to one learner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Integer, Table, bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.models import Json, UtcDateTime
from skilltree.platform.pagination import Keyset, Position, Q, page_query
from skilltree.reviews.models import ReviewCard, ReviewLogEntry
from skilltree.roadmaps import service as roadmaps

# Built once, the learner's values bound at execution: a statement built per request cost
# more CPU than its compiled-cache lookup.
_ACTIVE_CARD = select(ReviewCard).where(
    ReviewCard.id == bindparam("card_id"),
    ReviewCard.user_id == bindparam("user_id"),
    ReviewCard.retired_at.is_(None),
)


async def active_card(session: AsyncSession, user_id: int, card_id: int) -> ReviewCard | None:
    parameters = {"card_id": card_id, "user_id": user_id}
    return (await session.execute(_ACTIVE_CARD, parameters)).scalar_one_or_none()


_CARDS = cast(Table, ReviewCard.__table__)

# A new card for the learner's topic unless an active one is there: the check and the insert in
# one statement (on every backend: an INSERT … SELECT whose SELECT has no row when the card
# exists), built once, its values bound at execution. Its id comes back, or nothing.
_START_CARD = (
    insert(_CARDS)
    .from_select(
        ["user_id", "topic_id", "due", "fsrs_card", "created_at"],
        select(
            bindparam("user_id", type_=Integer),
            bindparam("topic_id", type_=Integer),
            bindparam("now", type_=UtcDateTime),
            bindparam("fsrs_card", type_=Json),
            bindparam("now", type_=UtcDateTime),
        ).where(
            ~exists().where(
                _CARDS.c.user_id == bindparam("user_id"),
                _CARDS.c.topic_id == bindparam("topic_id"),
                _CARDS.c.retired_at.is_(None),
            )
        ),
    )
    .returning(_CARDS.c.id)
)
_SET_FSRS_CARD = (
    update(_CARDS)
    .where(_CARDS.c.id == bindparam("card_id"))
    .values(fsrs_card=bindparam("fsrs_card", type_=Json))
)


async def start_card(
    session: AsyncSession, user_id: int, topic_id: int, now: datetime
) -> int | None:
    """The id of a card inserted for the topic, due now; None when an active one exists."""
    parameters = {"user_id": user_id, "topic_id": topic_id, "now": now, "fsrs_card": {}}
    inserted: int | None = (await session.execute(_START_CARD, parameters)).scalar()
    return inserted


async def set_fsrs_card(session: AsyncSession, card_id: int, fsrs_card: dict[str, Any]) -> None:
    await session.execute(_SET_FSRS_CARD, {"card_id": card_id, "fsrs_card": fsrs_card})


_RETIRE_CARDS = (
    update(_CARDS)
    .where(
        # Not "user_id": in an UPDATE a column's name is its new value's parameter.
        _CARDS.c.user_id == bindparam("card_user_id"),
        _CARDS.c.topic_id == bindparam("card_topic_id"),
        _CARDS.c.retired_at.is_(None),
    )
    .values(retired_at=bindparam("now", type_=UtcDateTime))
)


async def retire_cards(session: AsyncSession, user_id: int, topic_id: int, now: datetime) -> None:
    parameters = {"card_user_id": user_id, "card_topic_id": topic_id, "now": now}
    await session.execute(_RETIRE_CARDS, parameters)


class ListedCard(NamedTuple):
    """A card as the due list shows it: its id, its topic and when it came due."""

    id: int
    topic_id: int
    due: datetime


class DueRow(NamedTuple):
    """A card of the due list and its topic's label (None where the topic is gone)."""

    card: ListedCard
    roadmap_slug: str | None
    topic_slug: str | None
    title: str | None


# Oldest due first; the id orders cards due at the same instant.
DUE_ORDER = Keyset(_CARDS.c.due, _CARDS.c.id)
# Only what the list shows, as tuples: the scheduler's state (a JSON document per card) is
# read to rate a card, never to list one. Table columns rather than mapped attributes, so the
# session runs it as a Core statement, without the ORM's work per statement; and each card's
# topic label joined in by the roadmaps domain, so a page is one round trip, not two.
_DUE = roadmaps.with_topic_labels(
    select(_CARDS.c.id, _CARDS.c.topic_id, _CARDS.c.due).where(
        _CARDS.c.user_id == bindparam("user_id"),
        _CARDS.c.retired_at.is_(None),
        _CARDS.c.due <= bindparam("now"),
    ),
    _CARDS.c.topic_id,
)


def _in_index_order(query: Q, *, backwards: bool) -> Q:
    """`query` ordered first by the columns the WHERE pins to one value, user_id and
    retired_at: the same order, but only an ORDER BY that names the due index's leading
    columns lets PostgreSQL read the page in index order and stop at its last row, where
    `retired_at IS NULL` alone left it reading every due card and sorting them."""
    leading = [_CARDS.c.user_id, _CARDS.c.retired_at]
    return query.order_by(*(column.desc() if backwards else column for column in leading))


# The first page, the one nearly every request asks for, built once: putting the statement
# together cost about as much CPU as running it.
_FIRST_DUE_PAGE = (
    _in_index_order(_DUE, backwards=False)
    .order_by(*DUE_ORDER.order_by(reverse=False))
    .limit(bindparam("rows", type_=Integer))
)


async def due_page(
    session: AsyncSession, user_id: int, now: datetime, position: Position | None, limit: int
) -> list[DueRow]:
    values: dict[str, object] = {"user_id": user_id, "now": now}
    if position is None:
        query = _FIRST_DUE_PAGE
        values["rows"] = limit + 1  # one more, to tell whether another page follows
    else:
        ordered = _in_index_order(_DUE, backwards=position.direction == "prev")
        query = page_query(ordered, DUE_ORDER, position, limit)
    rows = (await session.execute(query, values)).all()
    return [
        DueRow(ListedCard(card_id, topic_id, due), roadmap_slug, topic_slug, title)
        for card_id, topic_id, due, roadmap_slug, topic_slug, title in rows
    ]


# When the learner's next card not due yet comes due: the first instant the first page made
# now would differ from one made then (decision 0082). The due index's range, read at its start.
_NEXT_DUE = select(func.min(_CARDS.c.due)).where(
    _CARDS.c.user_id == bindparam("user_id"),
    _CARDS.c.retired_at.is_(None),
    _CARDS.c.due > bindparam("now"),
)


async def next_due(session: AsyncSession, user_id: int, now: datetime) -> datetime | None:
    """The earliest `due` among the learner's active cards not due at `now`; None if none."""
    found: datetime | None = (
        await session.execute(_NEXT_DUE, {"user_id": user_id, "now": now})
    ).scalar()
    return found


# The roadmaps of the learner's active cards, due or not: every roadmap whose change could
# rename a card of the due list. The labels come last, the roadmap's slug first among them
# (`with_topic_labels`).
_LABELLED_CARDS = roadmaps.with_topic_labels(
    select(_CARDS.c.topic_id).where(
        _CARDS.c.user_id == bindparam("user_id"), _CARDS.c.retired_at.is_(None)
    ),
    _CARDS.c.topic_id,
).subquery()
_CARD_ROADMAPS = select(list(_LABELLED_CARDS.c)[-3]).distinct()


async def card_roadmaps(session: AsyncSession, user_id: int) -> list[str]:
    """The slugs of the roadmaps the learner's active cards are on, sorted."""
    rows = (await session.execute(_CARD_ROADMAPS, {"user_id": user_id})).all()
    return sorted(slug for (slug,) in rows if slug is not None)


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
