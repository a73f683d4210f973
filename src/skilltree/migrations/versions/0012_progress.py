"""Profiles, topic concepts and estimates, the progress log and projection, notes, personal
resources, review cards and the review log.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skilltree.platform.models import Json, UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("users.id", ondelete="CASCADE")


def _topic_fk() -> sa.ForeignKey:
    return sa.ForeignKey("topics.id", ondelete="CASCADE")


def upgrade() -> None:
    with op.batch_alter_table("topics") as topics:
        topics.add_column(sa.Column("concept", sa.String(80), nullable=True))
        topics.add_column(sa.Column("estimate_hours", sa.Float(), nullable=True))
        topics.create_index(
            "ix_topics_concept", ["concept"]
        )  # online: released while the table was small

    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Integer(), _user_fk(), nullable=False),
        sa.Column("handle", sa.String(40), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("share_progress_by_concept", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_profiles"),
        sa.UniqueConstraint("handle", name="uq_profiles_handle"),
    )

    op.create_table(
        "progress_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), _user_fk(), nullable=False),
        sa.Column("topic_id", sa.Integer(), _topic_fk(), nullable=False),
        sa.Column(
            "roadmap_id",
            sa.Integer(),
            sa.ForeignKey("roadmaps.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("from_confidence", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column(
            "undoes_event_id",
            sa.Integer(),
            sa.ForeignKey("progress_events.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_progress_events"),
        sa.UniqueConstraint("undoes_event_id", name="uq_progress_events_undoes_event_id"),
    )
    op.create_index(
        "ix_progress_events_user_roadmap",
        "progress_events",
        ["user_id", "roadmap_id", "occurred_at", "id"],
    )
    op.create_index(
        "ix_progress_events_user_occurred", "progress_events", ["user_id", "occurred_at"]
    )

    op.create_table(
        "topic_progress",
        sa.Column("user_id", sa.Integer(), _user_fk(), nullable=False),
        sa.Column("topic_id", sa.Integer(), _topic_fk(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "topic_id", name="pk_topic_progress"),
    )
    op.create_index("ix_topic_progress_topic_id", "topic_progress", ["topic_id"])

    op.create_table(
        "topic_notes",
        sa.Column("user_id", sa.Integer(), _user_fk(), nullable=False),
        sa.Column("topic_id", sa.Integer(), _topic_fk(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "topic_id", name="pk_topic_notes"),
    )
    op.create_index("ix_topic_notes_topic_id", "topic_notes", ["topic_id"])

    op.create_table(
        "personal_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), _user_fk(), nullable=False),
        sa.Column("topic_id", sa.Integer(), _topic_fk(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_personal_resources"),
    )
    op.create_index(
        "ix_personal_resources_user_topic", "personal_resources", ["user_id", "topic_id", "id"]
    )

    op.create_table(
        "review_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), _user_fk(), nullable=False),
        sa.Column("topic_id", sa.Integer(), _topic_fk(), nullable=False),
        sa.Column("due", UtcDateTime, nullable=False),
        sa.Column("fsrs_card", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("retired_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_cards"),
    )
    op.create_index(
        "ix_review_cards_user_due", "review_cards", ["user_id", "retired_at", "due", "id"]
    )
    op.create_index("ix_review_cards_user_topic", "review_cards", ["user_id", "topic_id"])

    op.create_table(
        "review_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "card_id",
            sa.Integer(),
            sa.ForeignKey("review_cards.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rating", sa.String(10), nullable=False),
        sa.Column("reviewed_at", UtcDateTime, nullable=False),
        sa.Column("due_before", UtcDateTime, nullable=False),
        sa.Column("due_after", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_log"),
    )
    op.create_index("ix_review_log_card_id", "review_log", ["card_id"])


def downgrade() -> None:
    for table in (
        "review_log",
        "review_cards",
        "personal_resources",
        "topic_notes",
        "topic_progress",
        "progress_events",
        "profiles",
    ):
        op.drop_table(table)
    with op.batch_alter_table("topics") as topics:
        topics.drop_index("ix_topics_concept")
        topics.drop_column("estimate_hours")
        topics.drop_column("concept")
