"""Cohorts: assignments and their completions, the activity feed, members' sharing choices.

Revision ID: 0020
Revises: 0027
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0027"
branch_labels = None
depends_on = None

json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("roadmap_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("due_at", moment, nullable=True),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("reminded_at", moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignments"),
        _fk("assignments", "org_id", "organisations", "CASCADE"),
        _fk("assignments", "roadmap_id", "roadmaps", "CASCADE"),
        _fk("assignments", "section_id", "topics", "CASCADE"),
        _fk("assignments", "assignee_id", "users", "CASCADE"),
        _fk("assignments", "assigned_by", "users", "SET NULL"),
    )
    op.create_index("ix_assignments_org_id", "assignments", ["org_id"])
    op.create_index("ix_assignments_assignee_id", "assignments", ["assignee_id"])
    op.create_table(
        "assignment_completions",
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("completed_at", moment, nullable=False),
        sa.PrimaryKeyConstraint("assignment_id", "user_id", name="pk_assignment_completions"),
        _fk("assignment_completions", "assignment_id", "assignments", "CASCADE"),
        _fk("assignment_completions", "user_id", "users", "CASCADE"),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("data", json, nullable=False),
        sa.Column("occurred_at", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_activity"),
        _fk("activity", "org_id", "organisations", "CASCADE"),
        _fk("activity", "actor_id", "users", "SET NULL"),
        sa.UniqueConstraint("org_id", "event_id", name="uq_activity_org_id_event_id"),
    )
    op.create_index("ix_activity_org_id_id", "activity", ["org_id", "id"])
    op.create_table(
        "cohort_sharing",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("share_details", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "user_id", name="pk_cohort_sharing"),
        _fk("cohort_sharing", "org_id", "organisations", "CASCADE"),
        _fk("cohort_sharing", "user_id", "users", "CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("cohort_sharing")
    op.drop_table("activity")
    op.drop_table("assignment_completions")
    op.drop_table("assignments")
