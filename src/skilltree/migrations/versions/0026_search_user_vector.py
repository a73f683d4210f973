"""Search: one learner's documents found through a GIN index on (user_id, search_vector).

A GIN index on the vector alone finds every learner's matching notes and leaves the user to a
filter; with btree_gin the user id is a key of the same index, so a search reads only the
caller's matching rows.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute("DROP INDEX IF EXISTS ix_search_documents_personal_vector")
    op.execute(
        "CREATE INDEX ix_search_documents_user_vector ON search_documents "
        "USING gin (user_id, search_vector) WHERE user_id IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_search_documents_user_vector")
    op.execute(
        "CREATE INDEX ix_search_documents_personal_vector ON search_documents "
        "USING gin (search_vector) WHERE user_id IS NOT NULL"
    )
