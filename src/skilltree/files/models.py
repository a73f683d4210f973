"""Stored files: what the database knows about an object in storage (the bytes live there)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, UtcDateTime


class StoredFile(Base):
    __tablename__ = "stored_files"
    __table_args__ = (Index("ix_stored_files_user_topic", "user_id", "topic_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Made by the server (never from the client's file name): where the bytes are stored.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # attachment | avatar
    # The note it is attached to is the learner's note on this topic.
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))  # for Content-Disposition, sanitised
    content_type: Mapped[str] = mapped_column(String(100))  # from the bytes, not the client
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ResumableUpload(Base):
    """A tus upload in progress: its bytes so far are parts in storage, one per PATCH."""

    __tablename__ = "resumable_uploads"
    __table_args__ = (Index("ix_resumable_uploads_expires_at", "expires_at"),)

    # The id in the upload's URL: 128 random bits, so one upload's URL tells nothing of others.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # attachment
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))  # from Upload-Metadata, sanitised later
    length: Mapped[int] = mapped_column(BigInteger)  # Upload-Length, declared at creation
    received: Mapped[int] = mapped_column(BigInteger)  # the offset: bytes stored so far
    # The storage keys of the parts, in order; each PATCH that succeeded added one.
    parts: Mapped[list[str]] = mapped_column(JSON)
    # Set once the last byte arrived: the stored file the upload became.
    file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImageVariant(Base):
    """A smaller, re-encoded copy of a stored image (an avatar size, an attachment's thumbnail),
    made by the `files.image-variants` task. Its key is derived from the original's, so making
    it again overwrites the same object."""

    __tablename__ = "image_variants"
    __table_args__ = (UniqueConstraint("file_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(20))  # "64", "128", "256" or "thumbnail"
    key: Mapped[str] = mapped_column(String(100), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
