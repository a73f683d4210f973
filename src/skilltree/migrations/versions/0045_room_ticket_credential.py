"""Room tickets remember the credential they were issued with, so an open socket can check it.

Revision ID: 0045
Revises: 0040
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: tickets live 30 seconds, and one issued before the upgrade has no credential
    # to check (its socket is closed at the first check, and reconnects with a new ticket).
    op.add_column("room_tickets", sa.Column("credential", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("room_tickets") as tickets:
        tickets.drop_column("credential")
