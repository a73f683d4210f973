"""Study-room tables: rooms, their sequenced messages, read receipts and connection tickets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, UtcDateTime


class Room(Base):
    """A room of an organisation: its lobby, or one a member opened for a topic."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The sequence number of the room's latest entry; incremented under the row's lock.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class RoomEntry(Base):
    """A sequenced entry of a room's log: a chat message, or the deletion of one.

    Deletions are entries of their own, so a client replaying from its last sequence number
    learns about a message deleted while it was away."""

    __tablename__ = "room_entries"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # message | deletion
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str | None] = mapped_column(Text)
    target_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RoomRead(Base):
    """How far a member has read a room (read receipts)."""

    __tablename__ = "room_reads"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_read_seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RoomTicket(Base):
    """A single-use, short-lived permission to open one room's WebSocket. Only its SHA-256 is
    stored; using it sets `used_at` in the same statement that checks it was unused."""

    __tablename__ = "room_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The sign-in it was issued with (accounts' credential reference, never a secret): the
    # socket it opens is closed once that sign-in ends.
    credential: Mapped[str | None] = mapped_column(String(100))
