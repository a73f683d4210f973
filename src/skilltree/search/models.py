"""The search index: one row per searchable thing, whichever domain owns it.

A row is a copy, kept in step by domain events (service.apply_event) and rebuilt by `skilltree
search reindex`. Its foreign keys cascade, so a deleted roadmap, topic or account leaves the
index in the same transaction, before any event is delivered.

Each backend adds its own full-text machinery beside this table in the migration, outside the
ORM: on PostgreSQL a generated `tsvector` column with a GIN index and a trigram index on titles;
on SQLite an FTS5 table (external content, kept in step by triggers) and its vocabulary view;
on MariaDB/MySQL two InnoDB FULLTEXT indexes.
`BACKEND_OBJECTS` names them so the schema comparison leaves them alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from skilltree.platform.models import Base, UtcDateTime

FTS_TABLE = "search_fts"
VECTOR_COLUMN = "search_vector"
BACKEND_OBJECTS = frozenset(
    {
        VECTOR_COLUMN,
        "ix_search_documents_public_vector",
        "ix_search_documents_personal_vector",
        "ix_search_documents_user_vector",
        "ix_search_documents_title_trgm",
        "ix_search_documents_fulltext",
        "ix_search_documents_title_fulltext",
    }
)


def is_backend_object(name: str | None) -> bool:
    """Whether a schema object belongs to a backend's full-text machinery (not to the models)."""
    return name is not None and (name in BACKEND_OBJECTS or name.startswith(FTS_TABLE))


class SearchDocument(Base):
    __tablename__ = "search_documents"
    __table_args__ = (Index("ix_search_documents_user_kind", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "topic:12", "note:7:12" (user, topic), "resource:31": what the row copies, unique.
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # topic | note | resource
    roadmap_id: Mapped[int] = mapped_column(
        ForeignKey("roadmaps.id", ondelete="CASCADE"), index=True
    )
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    # Whose it is: None for a roadmap's topics (visible with their roadmap), the learner for
    # notes and resources (visible to them alone).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
