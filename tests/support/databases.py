"""Real databases for tests: a migrated SQLite file, throwaway PostgreSQL and MariaDB databases.

PostgreSQL tests run against a fresh database created for the test session and dropped after
it, so nothing a test run does can touch another database on the server. Outside CI an
unreachable server skips those tests with the reason; in CI it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncmy
import asyncmy.errors
import asyncpg
import pytest
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "SKILLTREE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def require_postgres() -> None:
    """Skip (or, in CI, fail) when the PostgreSQL server cannot be reached."""
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL unreachable at {make_url(ADMIN_URL).render_as_string()}: {error}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(f"{reason}; set SKILLTREE_TEST_POSTGRES_URL or start PostgreSQL")
    await connection.close()


@asynccontextmanager
async def temporary_postgres_database() -> AsyncIterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    await require_postgres()
    name = f"skilltree_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


MARIADB_ADMIN_URL = os.environ.get(
    "SKILLTREE_TEST_MARIADB_URL", "mariadb+asyncmy://root@127.0.0.1:3306/mysql"
)


async def _mariadb_admin() -> asyncmy.Connection:
    url = make_url(MARIADB_ADMIN_URL)
    return await asyncmy.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=5,
        autocommit=True,
    )


async def require_mariadb() -> None:
    """Skip (or, in CI, fail) when the MariaDB/MySQL server cannot be reached."""
    try:
        connection = await _mariadb_admin()
    except (OSError, asyncmy.errors.Error) as error:
        reason = f"MariaDB unreachable at {make_url(MARIADB_ADMIN_URL).render_as_string()}: {error}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: MariaDB tests must run)", pytrace=False)
        pytest.skip(f"{reason}; set SKILLTREE_TEST_MARIADB_URL or start MariaDB")
    connection.close()


@asynccontextmanager
async def temporary_mariadb_database() -> AsyncIterator[str]:
    """Create an empty MariaDB/MySQL database, yield its SQLAlchemy URL, drop it afterwards."""
    await require_mariadb()
    name = f"skilltree_test_{uuid.uuid4().hex[:12]}"
    admin = await _mariadb_admin()
    try:
        async with admin.cursor() as cursor:
            # No character set given: the migrations set the database's own (utf8mb4, binary).
            await cursor.execute(f"CREATE DATABASE `{name}`")
        yield make_url(MARIADB_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
