"""Roadmap revisions (immutable snapshots), forks, and stored Idempotency-Key responses.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The columns that make a revision what it is. Only published_by may change (to NULL, when the
# publishing user is deleted), so the trigger watches every other column.
SNAPSHOT_COLUMNS = "roadmap_id, number, content_hash, document, note, published_at"


def upgrade() -> None:
    op.create_table(
        "roadmap_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roadmap_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("document", json, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("published_by", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roadmap_revisions"),
        sa.ForeignKeyConstraint(
            ["roadmap_id"],
            ["roadmaps.id"],
            name="fk_roadmap_revisions_roadmap_id_roadmaps",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["published_by"],
            ["users.id"],
            name="fk_roadmap_revisions_published_by_users",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("roadmap_id", "number", name="uq_roadmap_revisions_roadmap_id_number"),
    )
    _create_immutability_trigger()
    with op.batch_alter_table("roadmaps") as roadmaps:
        roadmaps.add_column(sa.Column("forked_from_id", sa.Integer(), nullable=True))
        roadmaps.create_foreign_key(
            "fk_roadmaps_forked_from_id_roadmaps",
            "roadmaps",
            ["forked_from_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", json, nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("caller", "key", name="uq_idempotency_keys_caller_key"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def _create_immutability_trigger() -> None:
    """Refuse any change to a published snapshot, in the database itself, on both backends."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION roadmap_revisions_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'roadmap revisions are immutable';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER roadmap_revisions_immutable BEFORE UPDATE OF {SNAPSHOT_COLUMNS} "
            "ON roadmap_revisions FOR EACH ROW EXECUTE FUNCTION roadmap_revisions_immutable()"
        )
    elif op.get_bind().dialect.name in {"mysql", "mariadb"}:
        # No "UPDATE OF columns" here: the trigger compares each snapshot column (<=> is
        # NULL-safe equality) and SIGNALs, which the client receives as an error.
        unchanged = " AND ".join(
            f"NEW.{column} <=> OLD.{column}" for column in SNAPSHOT_COLUMNS.split(", ")
        )
        refuse = "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'roadmap revisions are immutable'"
        op.execute(
            "CREATE TRIGGER roadmap_revisions_immutable BEFORE UPDATE ON roadmap_revisions "
            + f"FOR EACH ROW IF NOT ({unchanged}) THEN {refuse}; END IF"
        )
    else:
        op.execute(
            f"CREATE TRIGGER roadmap_revisions_immutable BEFORE UPDATE OF {SNAPSHOT_COLUMNS} "
            "ON roadmap_revisions BEGIN SELECT RAISE(ABORT, 'roadmap revisions are immutable'); END"
        )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("roadmaps") as roadmaps:
        roadmaps.drop_constraint("fk_roadmaps_forked_from_id_roadmaps", type_="foreignkey")
        roadmaps.drop_column("forked_from_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER roadmap_revisions_immutable ON roadmap_revisions")
        op.execute("DROP FUNCTION roadmap_revisions_immutable()")
    else:
        op.execute("DROP TRIGGER roadmap_revisions_immutable")
    op.drop_table("roadmap_revisions")
