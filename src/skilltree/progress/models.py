"""Progress tables: the event log (the truth) and the projection (what reads use).

`progress_events` is append-only: a change, and its undo, are both new rows. `topic_progress`
holds the latest state per user and topic; it is updated in the same transaction as the event
it follows from, and replaying the log rebuilds it exactly (tests/progress/test_projection.py).
Both are keyed to topic ids, never slugs, so renames and moves keep every learner's progress.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, UtcDateTime


class ProgressEvent(Base):
    __tablename__ = "progress_events"
    __table_args__ = (
        # History of one roadmap, newest first, walked by keyset on (occurred_at, id).
        Index("ix_progress_events_user_roadmap", "user_id", "roadmap_id", "occurred_at", "id"),
        # Streaks and the heatmap read one user's activity by time.
        Index("ix_progress_events_user_occurred", "user_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    # Denormalised (a topic never changes roadmap) so a roadmap's history is one index range.
    roadmap_id: Mapped[int] = mapped_column(ForeignKey("roadmaps.id", ondelete="CASCADE"))
    # None: the topic had no status of its own (it was derived from its children, or new).
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    from_confidence: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    request_id: Mapped[str | None] = mapped_column(String(100))
    # An undo is an event too: it names the event it reverts, which is then never undone again.
    undoes_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("progress_events.id", ondelete="CASCADE"), unique=True
    )


class TopicProgress(Base):
    """The projection: each user's current status of each topic they ever touched."""

    __tablename__ = "topic_progress"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_event_id: Mapped[int] = mapped_column(Integer)


class TopicNote(Base):
    __tablename__ = "topic_notes"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    markdown: Mapped[str] = mapped_column(Text)
    # Rendered and sanitised once on write; reads serve it as stored.
    html: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PersonalResource(Base):
    """A link a learner keeps for a topic (their own, not the roadmap's)."""

    __tablename__ = "personal_resources"
    __table_args__ = (Index("ix_personal_resources_user_topic", "user_id", "topic_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
