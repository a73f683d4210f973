"""Spaced repetition with FSRS (the `fsrs` package): done topics become cards that come due.

The scheduler is stateless; each card's FSRS state (stability, difficulty, step, due) is stored
with the card, so schedules survive restarts and any instance can review any card. Every time
comes from the injected clock and is timezone-aware UTC, as fsrs requires. Card ids are ours
(the row's id): fsrs's own id generator sleeps a millisecond per card to keep ids unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, cast

from fsrs import Card, Rating, Scheduler
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.observability import metrics
from skilltree.platform.observability.business import count_on_commit
from skilltree.platform.pagination import Page, Position, make_page
from skilltree.reviews import repository
from skilltree.reviews.errors import CardNotFound
from skilltree.reviews.models import ReviewCard, ReviewLogEntry
from skilltree.roadmaps import service as roadmaps

if TYPE_CHECKING:
    from fsrs.card import CardDict

# Fuzzing spreads cards learned together over nearby days instead of one crowded day.
SCHEDULER = Scheduler(enable_fuzzing=True)
RETIRING_STATUSES = frozenset({"todo", None})


class ReviewRating(StrEnum):
    AGAIN = "again"
    HARD = "hard"
    GOOD = "good"
    EASY = "easy"

    @property
    def fsrs(self) -> Rating:
        return Rating[self.name.title()]


@dataclass(frozen=True)
class DueCard:
    card: repository.ListedCard
    topic: roadmaps.TopicLabel | None


async def on_status_change(
    session: AsyncSession,
    user_id: int,
    topic_id: int,
    before: str | None,
    after: str | None,
    now: datetime,
) -> None:
    """Keep cards in step with progress: done makes a card, back to todo retires it."""
    if after == "done" and before != "done":
        await _start_card(session, user_id, topic_id, now)
    elif after in RETIRING_STATUSES and before not in RETIRING_STATUSES:
        await repository.retire_cards(session, user_id, topic_id, now)


async def due_cards(
    session: AsyncSession, user_id: int, now: datetime, position: Position | None, limit: int
) -> Page[DueCard]:
    rows = await repository.due_page(session, user_id, now, position, limit)
    page = make_page(rows, position, limit, lambda row: (row.card.due, row.card.id))
    return Page([_due_card(row) for row in page.items], page.next, page.prev)


def _due_card(row: repository.DueRow) -> DueCard:
    card = row.card
    if row.roadmap_slug is None or row.topic_slug is None or row.title is None:
        return DueCard(card, None)
    return DueCard(
        card, roadmaps.TopicLabel(card.topic_id, row.roadmap_slug, row.topic_slug, row.title)
    )


async def review(
    session: AsyncSession, user_id: int, card_id: int, rating: ReviewRating, now: datetime
) -> ReviewCard:
    """Record a review and schedule the card's next due date."""
    row = await repository.active_card(session, user_id, card_id)
    if row is None:
        raise CardNotFound(card_id)
    before = Card.from_dict(cast("CardDict", row.fsrs_card))
    card, _log = SCHEDULER.review_card(before, rating.fsrs, now)
    repository.add(
        session,
        ReviewLogEntry(
            card_id=row.id,
            rating=rating.value,
            reviewed_at=now,
            due_before=row.due,
            due_after=card.due,
        ),
    )
    row.fsrs_card = dict(card.to_dict())
    row.due = card.due
    await repository.flush(session)
    count_on_commit(session, metrics.REVIEWS_RATED.labels(rating.value))
    return row


async def _start_card(session: AsyncSession, user_id: int, topic_id: int, now: datetime) -> None:
    """A card for the topic, unless the learner has an active one."""
    # Inserted first for the id, then fsrs is given that id: one source of card ids, no
    # sleeping.
    card_id = await repository.start_card(session, user_id, topic_id, now)
    if card_id is not None:
        await repository.set_fsrs_card(
            session, card_id, dict(Card(card_id=card_id, due=now).to_dict())
        )
