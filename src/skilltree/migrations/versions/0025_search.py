"""Search: the index table, PostgreSQL full-text (tsvector, GIN, pg_trgm, unaccent), SQLite FTS5
or InnoDB FULLTEXT (MariaDB/MySQL).

Revision ID: 0025
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0014"
branch_labels = None
depends_on = None

# English stemming after accents are folded away: "Café" and "cafe", "caching" and "caches"
# meet. A configuration of our own keeps the generated column's expression immutable.
POSTGRESQL_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION skilltree_search (COPY = pg_catalog.english)",
    "ALTER TEXT SEARCH CONFIGURATION skilltree_search "
    "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem",
    "ALTER TABLE search_documents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('skilltree_search'::regconfig, title), 'A') || "
    "setweight(to_tsvector('skilltree_search'::regconfig, body), 'B')) STORED",
    # Topics (everyone's corpus) and personal documents are searched by different plans: the
    # first through the whole index, the second usually through one learner's rows.
    "CREATE INDEX ix_search_documents_public_vector ON search_documents "
    "USING gin (search_vector) WHERE user_id IS NULL",
    "CREATE INDEX ix_search_documents_personal_vector ON search_documents "
    "USING gin (search_vector) WHERE user_id IS NOT NULL",
    "CREATE INDEX ix_search_documents_title_trgm ON search_documents "
    "USING gin (title gin_trgm_ops) WHERE user_id IS NULL",
]
POSTGRESQL_DOWN = ["DROP TEXT SEARCH CONFIGURATION IF EXISTS skilltree_search"]

# External content: the text lives once, in search_documents; the triggers keep the FTS5 index
# in step with every insert, update and delete (cascades included).
SQLITE_UP = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content='search_documents', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2', prefix='2 3')",
    "CREATE VIRTUAL TABLE search_fts_vocab USING fts5vocab(search_fts, 'row')",
    "CREATE TRIGGER search_fts_after_insert AFTER INSERT ON search_documents BEGIN "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER search_fts_after_delete AFTER DELETE ON search_documents BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER search_fts_after_update AFTER UPDATE ON search_documents BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
]
# InnoDB FULLTEXT (MariaDB 10.0.5+, MySQL 5.6+): one index for matching and ranking, one on the
# title alone so title words can weigh more. The database's binary collation would make the
# search case-sensitive, so the indexed text is compared case- and accent-insensitively.
MYSQL_UP = [
    "ALTER TABLE search_documents "
    "MODIFY title VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL, "
    "MODIFY body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL",
    "CREATE FULLTEXT INDEX ix_search_documents_fulltext ON search_documents (title, body)",
    "CREATE FULLTEXT INDEX ix_search_documents_title_fulltext ON search_documents (title)",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS search_fts_after_update",
    "DROP TRIGGER IF EXISTS search_fts_after_delete",
    "DROP TRIGGER IF EXISTS search_fts_after_insert",
    "DROP TABLE IF EXISTS search_fts_vocab",
    "DROP TABLE IF EXISTS search_fts",
]


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("roadmap_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["roadmap_id"],
            ["roadmaps.id"],
            name="fk_search_documents_roadmap_id_roadmaps",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["topics.id"],
            name="fk_search_documents_topic_id_topics",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_search_documents_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_search_documents"),
        sa.UniqueConstraint("key", name="uq_search_documents_key"),
    )
    op.create_index("ix_search_documents_roadmap_id", "search_documents", ["roadmap_id"])
    op.create_index("ix_search_documents_topic_id", "search_documents", ["topic_id"])
    op.create_index("ix_search_documents_user_kind", "search_documents", ["user_id", "kind"])
    dialect = op.get_bind().dialect.name
    statements = {"postgresql": POSTGRESQL_UP, "mysql": MYSQL_UP, "mariadb": MYSQL_UP}.get(
        dialect, SQLITE_UP
    )
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    op.drop_table("search_documents")
    if dialect == "postgresql":
        # The extensions stay: other schemas in the database may use them.
        for statement in POSTGRESQL_DOWN:
            op.execute(statement)
