"""The migrations are the schema: they round-trip and match the models on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.models import Base, include_in_schema_comparison
from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from skilltree.search.models import is_backend_object
from tests.support.databases import temporary_mariadb_database, temporary_postgres_database


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on a brand-new, empty database."""
    if request.param == "sqlite":
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/m.db"))
        yield engine
        await engine.dispose()
        return
    temporary = (
        temporary_postgres_database if request.param == "postgresql" else temporary_mariadb_database
    )
    async with temporary() as url:
        engine = create_engine(DatabaseSettings(url=url))
        yield engine
        await engine.dispose()


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return {name for name in names if not is_backend_object(name)} - {"alembic_version"}


async def test_upgrade_downgrade_upgrade_round_trips(empty_engine: AsyncEngine) -> None:
    await migrations.upgrade(empty_engine)
    assert await table_names(empty_engine) == set(Base.metadata.tables)

    await migrations.downgrade(empty_engine, "base")
    assert await table_names(empty_engine) == set()
    assert await migrations.current_revision(empty_engine) is None

    await migrations.upgrade(empty_engine)
    assert await migrations.current_revision(empty_engine) == migrations.head_revision()


async def test_migrated_schema_matches_the_models(empty_engine: AsyncEngine) -> None:
    await migrations.upgrade(empty_engine)

    async with empty_engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(
                    sync, opts={"include_object": include_in_schema_comparison}
                ),
                Base.metadata,
            )
        )

    assert differences == []


@pytest.mark.postgres
async def test_the_audit_log_refuses_updates_and_deletes_on_postgresql(
    postgresql_engine: AsyncEngine,
) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    async with postgresql_engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(
            text(
                "INSERT INTO security_events "
                "(kind, occurred_at, ip, user_agent, request_id, details) "
                "VALUES ('login.failed', now(), '', '', '', '{}')"
            )
        )
        for statement in (
            "UPDATE security_events SET kind = 'forged'",
            "DELETE FROM security_events",
        ):
            savepoint = await connection.begin_nested()
            with pytest.raises(DBAPIError, match="append-only"):
                await connection.execute(text(statement))
            await savepoint.rollback()
        await transaction.rollback()
