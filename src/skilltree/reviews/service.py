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

from skilltree.identity import OPERATOR, Visibility
from skilltree.platform.cache import stale_on_commit
from skilltree.platform.observability import metrics
from skilltree.platform.observability.business import count_on_commit
from skilltree.platform.pagination import Page, Position, make_page
from skilltree.reviews import repository
from skilltree.reviews.errors import CardNotFound
from skilltree.reviews.models import ReviewCard, ReviewLogEntry
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.errors import RoadmapNotFound

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


@dataclass(frozen=True)
class FirstPage:
    """The due list's first page, and the roadmaps of every card read to make it: the page's
    and the one after it, whose existence gives the page its `next` (None for a card whose
    topic is gone)."""

    page: Page[DueCard]
    roadmaps: frozenset[str | None]


@dataclass(frozen=True)
class Tenure:
    """How a roadmap is held: what says whether its topics, and the cards on them, can go
    without its cache namespace going stale."""

    visibility: str
    owner_id: int | None
    org_id: int | None

    def lasts_for(self, user_id: int) -> bool:
        """Whether the learner's cards on it go only with a change that marks its namespace,
        or theirs, stale (decision 0082). An organisation's roadmap goes with the organisation,
        and another's private roadmap with its owner's account, and neither marks it stale.
        A public roadmap has no organisation and is never deleted; the learner's own private
        one goes with their account, which marks their namespaces stale."""
        if self.org_id is not None:
            return False
        return self.visibility == Visibility.PUBLIC or self.owner_id == user_id


def queue_namespace(user_id: int) -> str:
    """Every change of the learner's review queue: a card started, retired or rated."""
    return f"reviews:{user_id}"


def cards_namespace(user_id: int) -> str:
    """Every change of which active cards the learner has (not of when they are due)."""
    return f"review-cards:{user_id}"


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
        _cards_changed(session, user_id)
    elif after in RETIRING_STATUSES and before not in RETIRING_STATUSES:
        await repository.retire_cards(session, user_id, topic_id, now)
        _cards_changed(session, user_id)


def _cards_changed(session: AsyncSession, user_id: int) -> None:
    stale_on_commit(session, queue_namespace(user_id), cards_namespace(user_id))


async def due_cards(
    session: AsyncSession, user_id: int, now: datetime, position: Position | None, limit: int
) -> Page[DueCard]:
    rows = await repository.due_page(session, user_id, now, position, limit)
    return _due_page(rows, position, limit)


async def first_due_page(
    session: AsyncSession, user_id: int, now: datetime, limit: int
) -> FirstPage:
    """`due_cards`' first page, with the roadmaps of the cards read to make it."""
    rows = await repository.due_page(session, user_id, now, None, limit)
    return FirstPage(_due_page(rows, None, limit), frozenset(row.roadmap_slug for row in rows))


def _due_page(
    rows: list[repository.DueRow], position: Position | None, limit: int
) -> Page[DueCard]:
    page = make_page(rows, position, limit, lambda row: (row.card.due, row.card.id))
    return Page([_due_card(row) for row in page.items], page.next, page.prev)


async def next_due(session: AsyncSession, user_id: int, now: datetime) -> datetime | None:
    """When the learner's next card not due at `now` comes due (None: no such card)."""
    return await repository.next_due(session, user_id, now)


async def card_roadmaps(session: AsyncSession, user_id: int) -> list[str]:
    """The roadmaps (slugs, sorted) the learner's active cards are on, due or not."""
    return await repository.card_roadmaps(session, user_id)


async def tenure(session: AsyncSession, slug: str) -> Tenure | None:
    """How the roadmap is held; None when there is none by that slug."""
    try:
        roadmap = await roadmaps.require_roadmap(session, slug, OPERATOR)
    except RoadmapNotFound:
        return None
    return Tenure(roadmap.visibility, roadmap.owner_id, roadmap.org_id)


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
    stale_on_commit(session, queue_namespace(user_id))
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
