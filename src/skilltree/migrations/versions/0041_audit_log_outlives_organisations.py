"""The append-only audit log lets an organisation be deleted: its events stay, unlinked.

Revision ID: 0041
Revises: 0030
Create Date: 2026-12-06

Deleting an organisation clears `security_events.org_id` (ON DELETE SET NULL, revision 0010),
which is an UPDATE; PostgreSQL's append-only trigger (revision 0004) allowed clearing only
`user_id`, so deleting any organisation with an audit trail failed. The rule is now: an update
may only clear `user_id` and/or `org_id`, nothing else. MariaDB fires no trigger for ON DELETE
SET NULL, so only PostgreSQL changes.
"""

from __future__ import annotations

from alembic import op

revision = "0041"
down_revision = "0030"
branch_labels = None
depends_on = None

UNCHANGED = """
                   AND NEW.kind = OLD.kind AND NEW.occurred_at = OLD.occurred_at
                   AND NEW.details = OLD.details"""


def _function(allowed_update: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION security_events_append_only() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND {allowed_update}{UNCHANGED} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'security_events is append-only';
        END;
        $$ LANGUAGE plpgsql
    """


# Each link either stays as it was or is cleared by the deletion of what it pointed at.
LINKS_CLEARED = (
    "(NEW.user_id IS NOT DISTINCT FROM OLD.user_id OR NEW.user_id IS NULL)"
    " AND (NEW.org_id IS NOT DISTINCT FROM OLD.org_id OR NEW.org_id IS NULL)"
)
USER_CLEARED = "NEW.user_id IS NULL AND OLD.user_id IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(LINKS_CLEARED))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(USER_CLEARED))
