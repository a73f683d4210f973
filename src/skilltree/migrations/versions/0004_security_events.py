"""The append-only security audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("details", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_security_events"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_security_events_user_id_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_security_events_user_id_id", "security_events", ["user_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        # Append-only, enforced by the database itself: even a bug (or an intruder with the
        # application's credentials) cannot rewrite history. Deleting a user may still clear
        # user_id (ON DELETE SET NULL), which is the only update allowed.
        op.execute(
            """
            CREATE FUNCTION security_events_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND NEW.user_id IS NULL AND OLD.user_id IS NOT NULL
                   AND NEW.kind = OLD.kind AND NEW.occurred_at = OLD.occurred_at
                   AND NEW.details = OLD.details THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'security_events is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER security_events_append_only BEFORE UPDATE OR DELETE "
            "ON security_events FOR EACH ROW EXECUTE FUNCTION security_events_append_only()"
        )
    elif op.get_bind().dialect.name in {"mysql", "mariadb"}:
        # The same rule as on PostgreSQL, one trigger per event (MySQL has no "UPDATE OR
        # DELETE"). Clearing user_id by ON DELETE SET NULL fires no trigger here at all.
        refuse = "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'security_events is append-only'"
        op.execute(
            "CREATE TRIGGER security_events_no_update BEFORE UPDATE ON security_events "
            "FOR EACH ROW IF NOT (NEW.user_id IS NULL AND OLD.user_id IS NOT NULL "
            "AND NEW.kind <=> OLD.kind AND NEW.occurred_at <=> OLD.occurred_at "
            f"AND NEW.details <=> OLD.details) THEN {refuse}; END IF"
        )
        op.execute(
            "CREATE TRIGGER security_events_no_delete BEFORE DELETE ON security_events "
            f"FOR EACH ROW {refuse}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER security_events_append_only ON security_events")
        op.execute("DROP FUNCTION security_events_append_only()")
    elif op.get_bind().dialect.name in {"mysql", "mariadb"}:
        op.execute("DROP TRIGGER security_events_no_update")
        op.execute("DROP TRIGGER security_events_no_delete")
    op.drop_table("security_events")
