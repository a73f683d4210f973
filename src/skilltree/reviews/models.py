"""Review cards and their log. The FSRS card state is stored whole, so the schedule survives
restarts; `due` is a column of its own so the due queue is an index range."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, Json, UtcDateTime


class ReviewCard(Base):
    __tablename__ = "review_cards"
    __table_args__ = (
        Index("ix_review_cards_user_due", "user_id", "retired_at", "due", "id"),
        Index("ix_review_cards_user_topic", "user_id", "topic_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    due: Mapped[datetime] = mapped_column(UtcDateTime)
    # fsrs.Card.to_dict(): state, step, stability, difficulty, due, last_review.
    fsrs_card: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set when the topic went back to todo: the card leaves the queue but keeps its history.
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ReviewLogEntry(Base):
    __tablename__ = "review_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(
        ForeignKey("review_cards.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[str] = mapped_column(String(10))
    reviewed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_before: Mapped[datetime] = mapped_column(UtcDateTime)
    due_after: Mapped[datetime] = mapped_column(UtcDateTime)
