"""Security events can belong to an organisation, for the owners' audit view.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("security_events") as events:
        events.add_column(sa.Column("org_id", sa.Integer(), nullable=True))
        events.create_foreign_key(
            "fk_security_events_org_id_organisations",
            "organisations",
            ["org_id"],
            ["id"],
            ondelete="SET NULL",
        )
        events.create_index(
            "ix_security_events_org_id_id", ["org_id", "id"]
        )  # online: released while the table was small


def downgrade() -> None:
    with op.batch_alter_table("security_events") as events:
        events.drop_constraint("fk_security_events_org_id_organisations", type_="foreignkey")
        events.drop_index("ix_security_events_org_id_id")
        events.drop_column("org_id")
