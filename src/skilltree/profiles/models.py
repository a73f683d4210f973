"""The profile table: one row per user who changed a setting; absent rows mean the defaults."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, UtcDateTime


class Profile(Base):
    __tablename__ = "profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The public name in badge URLs; unset until the learner picks one.
    handle: Mapped[str | None] = mapped_column(String(40), unique=True)
    # An IANA zone name: days for streaks and the heatmap are counted in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    share_progress_by_concept: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
