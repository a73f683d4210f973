"""Roadmaps and their topic trees.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "roadmaps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(80), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roadmaps"),
        sa.UniqueConstraint("slug", name="uq_roadmaps_slug"),
    )
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("roadmap_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(80), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("level", sa.String(20), nullable=True),
        sa.Column("tags", json, nullable=False),
        sa.Column("seeds", json, nullable=False),
        sa.Column("aliases", json, nullable=False),
        sa.Column("resources", json, nullable=False),
        sa.Column("implemented_in", json, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_topics"),
        sa.ForeignKeyConstraint(
            ["roadmap_id"],
            ["roadmaps.id"],
            name="fk_topics_roadmap_id_roadmaps",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["topics.id"], name="fk_topics_parent_id_topics", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("roadmap_id", "slug", name="uq_topics_roadmap_id_slug"),
    )
    op.create_index("ix_topics_parent_id", "topics", ["parent_id"])
    op.create_index(
        "ix_topics_roadmap_parent_position", "topics", ["roadmap_id", "parent_id", "position"]
    )


def downgrade() -> None:
    op.drop_table("topics")
    op.drop_table("roadmaps")
