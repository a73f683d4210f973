"""Topics remember whether their source wrote them as a task or as a plain bullet.

Revision ID: 0040
Revises: 0021
Create Date: 2026-12-06

Expand only: a nullable column, so the previous release keeps reading and writing topics.
NULL means the source did not say (YAML, JSON, headings), and the export keeps its old rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("topics", sa.Column("checkbox", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("topics") as batch:
        batch.drop_column("checkbox")
