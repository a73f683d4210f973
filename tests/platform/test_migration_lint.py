"""The lint that keeps migrations from locking a big table while the service runs."""

from __future__ import annotations

from skilltree.platform.migration_lint import lint_all, lint_source


def migration(body: str) -> str:
    lines = "\n".join(f"    {line}" for line in body.strip().splitlines())
    return f"import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade() -> None:\n{lines}\n"


def test_every_shipped_migration_passes() -> None:
    assert lint_all() == []


def test_an_index_on_an_existing_table_must_be_built_concurrently() -> None:
    blocking = migration('op.create_index("ix_topics_slug", "topics", ["slug"])')
    online = migration(
        "with op.get_context().autocommit_block():\n"
        '    op.create_index("ix_topics_slug", "topics", ["slug"], postgresql_concurrently=True)'
    )

    (finding,) = lint_source(blocking, "0035_x.py")
    assert (finding.file, finding.line) == ("0035_x.py", 6)
    assert "topics: CREATE INDEX blocks writes" in finding.message
    assert lint_source(online) == []


def test_an_index_on_a_table_the_migration_creates_is_fine() -> None:
    source = migration(
        'op.create_table("badges", sa.Column("id", sa.Integer, primary_key=True))\n'
        'op.create_index("ix_badges_id", "badges", ["id"])'
    )

    assert lint_source(source) == []


def test_an_index_added_in_a_batch_is_checked_against_the_batch_table() -> None:
    source = migration(
        'with op.batch_alter_table("roadmaps") as roadmaps:\n'
        '    roadmaps.create_index("ix_roadmaps_owner", ["owner_id"])'
    )

    (finding,) = lint_source(source)
    assert finding.message.startswith("roadmaps: CREATE INDEX")


def test_a_volatile_default_and_a_bare_not_null_are_flagged_a_constant_default_is_not() -> None:
    volatile = migration(
        'op.add_column("users", sa.Column("seen_at", sa.DateTime, server_default=sa.func.now()))'
    )
    not_null = migration('op.add_column("users", sa.Column("age", sa.Integer, nullable=False))')
    constant = migration(
        'op.add_column("users", sa.Column("plan", sa.String(9), nullable=False, '
        'server_default="free"))'
    )

    assert "volatile default rewrites" in lint_source(volatile)[0].message
    assert "NOT NULL without a default" in lint_source(not_null)[0].message
    assert lint_source(constant) == []


def test_a_type_change_is_flagged_unless_marked_safe() -> None:
    change = 'op.alter_column("topics", "title", type_=sa.Text())'
    marked = 'op.alter_column("topics", "title", type_=sa.Text())  # online: ten rows at most'

    assert "rewrites the table" in lint_source(migration(change))[0].message
    assert lint_source(migration(marked)) == []
