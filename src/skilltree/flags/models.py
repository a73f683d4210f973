"""Feature-flag tables: the flags, and the per-user and per-organisation overrides of each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, UtcDateTime


class FeatureFlag(Base):
    """A switch the code asks about by key, with the rules that decide it for a caller."""

    __tablename__ = "feature_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    # The answer for everyone no rule picks out.
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # 0-100: the share of signed-in users (by a stable hash) for whom the flag is on.
    rollout_percentage: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FlagOverride(Base):
    """One user's or one organisation's own answer for a flag.

    The subject is named by id without a foreign key (two kinds of subject in one table); the
    service checks that it exists when the override is set, and an override of an account or
    organisation deleted later decides for no one (ids are not given out again).
    """

    __tablename__ = "feature_flag_overrides"

    flag_id: Mapped[int] = mapped_column(
        ForeignKey("feature_flags.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(12), primary_key=True)  # user | organisation
    subject_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
