"""Roadmap tables: a roadmap owns an ordered tree of topics (adjacency list: parent_id + position).

An adjacency list keeps moves and renames to one-row updates; the whole tree of a roadmap is
read in one query and assembled in memory (see repository.load_topics).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, Json, UtcDateTime, utc_now


class Roadmap(Base):
    __tablename__ = "roadmaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    # builtin: shipped with skilltree; import: created from an uploaded file; custom: created
    # empty through the API; fork: copied from another roadmap.
    source: Mapped[str] = mapped_column(String(20))
    # Incremented whenever an import changes anything; clients can tell revisions apart.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the canonical JSON document: an unchanged re-import is detected without a diff.
    content_hash: Mapped[str] = mapped_column(String(64))
    # public: anyone; organisation: members of org_id; private: the owner only. Roadmaps
    # installed by the operator (built-in, CLI imports) have no owner.
    visibility: Mapped[str] = mapped_column(String(20), default="public")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    # The roadmap a fork was copied from; kept (as NULL) if the original is deleted.
    forked_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("roadmaps.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Topic(Base):
    __tablename__ = "topics"
    __table_args__ = (
        UniqueConstraint("roadmap_id", "slug"),
        Index("ix_topics_roadmap_parent_position", "roadmap_id", "parent_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    roadmap_id: Mapped[int] = mapped_column(ForeignKey("roadmaps.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    why: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str | None] = mapped_column(String(20))
    # Small value lists always read with the topic; JSON keeps the tree a single query.
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    seeds: Mapped[list[str]] = mapped_column(Json, default=list)
    aliases: Mapped[list[str]] = mapped_column(Json, default=list)
    resources: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    implemented_in: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # Topics of different roadmaps teaching the same concept share it here (progress follows).
    concept: Mapped[str | None] = mapped_column(String(80), index=True)
    estimate_hours: Mapped[float | None] = mapped_column(Float)
    # True: the source wrote a task ("- [ ]"); False: a plain bullet; None: it did not say.
    checkbox: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class RoadmapRevision(Base):
    """A published snapshot of a roadmap: never changed once written (a trigger refuses updates).

    Learners and forks can point at "revision 3" and know exactly what it contained, while the
    roadmap itself keeps being edited.
    """

    __tablename__ = "roadmap_revisions"
    __table_args__ = (UniqueConstraint("roadmap_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    roadmap_id: Mapped[int] = mapped_column(ForeignKey("roadmaps.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, 3... per roadmap
    # SHA-256 of the canonical document: publishing an unchanged roadmap is refused.
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    note: Mapped[str] = mapped_column(Text, default="")
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
