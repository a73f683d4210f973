"""Study rooms: rooms, their sequenced log, read receipts and single-use connection tickets.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

moment = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rooms"),
        _fk("rooms", "org_id", "organisations", "CASCADE"),
        _fk("rooms", "topic_id", "topics", "SET NULL"),
        _fk("rooms", "created_by", "users", "SET NULL"),
        sa.UniqueConstraint("org_id", "key", name="uq_rooms_org_id_key"),
    )
    op.create_table(
        "room_entries",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("target_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("deleted_at", moment, nullable=True),
        sa.PrimaryKeyConstraint("room_id", "seq", name="pk_room_entries"),
        _fk("room_entries", "room_id", "rooms", "CASCADE"),
        _fk("room_entries", "author_id", "users", "SET NULL"),
    )
    op.create_table(
        "room_reads",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("last_read_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "user_id", name="pk_room_reads"),
        _fk("room_reads", "room_id", "rooms", "CASCADE"),
        _fk("room_reads", "user_id", "users", "CASCADE"),
    )
    op.create_table(
        "room_tickets",
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", moment, nullable=False),
        sa.Column("used_at", moment, nullable=True),
        sa.PrimaryKeyConstraint("ticket_hash", name="pk_room_tickets"),
        _fk("room_tickets", "user_id", "users", "CASCADE"),
        _fk("room_tickets", "room_id", "rooms", "CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("room_tickets")
    op.drop_table("room_reads")
    op.drop_table("room_entries")
    op.drop_table("rooms")
