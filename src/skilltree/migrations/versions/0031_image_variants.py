"""Files: image variants (avatar sizes, attachment thumbnails) made in the background.

Revision ID: 0031
Revises: 0032
Create Date: 2026-12-06

An avatar is a stored file of kind "avatar" (stored_files.kind is a free string, so no column
changes); its sizes and the thumbnails of image attachments are rows of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["stored_files.id"],
            name="fk_image_variants_file_id_stored_files",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_image_variants"),
        sa.UniqueConstraint("file_id", "name", name="uq_image_variants_file_id_name"),
        sa.UniqueConstraint("key", name="uq_image_variants_key"),
    )


def downgrade() -> None:
    op.drop_table("image_variants")
