"""Roadmap owners, organisations and visibility.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("roadmaps") as roadmaps:
        # Existing roadmaps were installed by the operator and readable by everyone: public.
        roadmaps.add_column(
            sa.Column("visibility", sa.String(20), nullable=False, server_default="public")
        )
        roadmaps.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        roadmaps.add_column(sa.Column("org_id", sa.Integer(), nullable=True))
        roadmaps.create_foreign_key(
            "fk_roadmaps_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL"
        )
        roadmaps.create_foreign_key(
            "fk_roadmaps_org_id_organisations",
            "organisations",
            ["org_id"],
            ["id"],
            ondelete="CASCADE",
        )
        roadmaps.create_index(
            "ix_roadmaps_org_id", ["org_id"]
        )  # online: released while the table was small
    with op.batch_alter_table("roadmaps") as roadmaps:
        roadmaps.alter_column("visibility", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("roadmaps") as roadmaps:
        roadmaps.drop_constraint("fk_roadmaps_org_id_organisations", type_="foreignkey")
        roadmaps.drop_index("ix_roadmaps_org_id")
        roadmaps.drop_constraint("fk_roadmaps_owner_id_users", type_="foreignkey")
        roadmaps.drop_column("org_id")
        roadmaps.drop_column("owner_id")
        roadmaps.drop_column("visibility")
