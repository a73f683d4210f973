"""Real databases for tests: a migrated SQLite file, throwaway PostgreSQL and MariaDB databases.

PostgreSQL tests run against a fresh database created for the test session and dropped after
it, so nothing a test run does can touch another database on the server. Outside CI an
unreachable server skips those tests with the reason; in CI it fails them.

A migrated PostgreSQL database is a copy of a template (`CREATE DATABASE … TEMPLATE`, well
under a second) instead of a run of every migration (seconds, tens of them under load). The
template is built once, by whichever test process gets there first while the others wait on a
file lock, and is named after a digest of the migration scripts: a changed or added script
names a new template, so a stale one is never copied.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncmy
import asyncmy.errors
import asyncpg
import pytest
from sqlalchemy.engine import make_url

import skilltree.migrations
from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine

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
async def temporary_postgres_database(template: str = "template1") -> AsyncIterator[str]:
    """Create an empty database (or a copy of `template`), yield its SQLAlchemy URL, drop it
    afterwards."""
    await require_postgres()
    name = f"skilltree_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield _postgres_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def migrated_postgres_database() -> AsyncIterator[str]:
    """A throwaway database at the migrations' head, as `skilltree migrate upgrade` leaves it."""
    await require_postgres()
    template = await _migrated_template()
    async with temporary_postgres_database(template) as url:
        yield url


def _postgres_url(database: str) -> str:
    return make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def _migrations_digest() -> str:
    """Changes whenever a migration script (or the environment that runs them) does."""
    folder = Path(next(iter(skilltree.migrations.__path__)))
    digest = hashlib.sha256()
    for script in sorted(folder.rglob("*.py")):
        digest.update(script.relative_to(folder).as_posix().encode())
        digest.update(script.read_bytes())
    return digest.hexdigest()[:16]


async def _migrated_template() -> str:
    """The name of the template at the current migrations, built first if it does not exist.

    Built under another name and renamed when complete, so a run killed halfway never leaves
    a template that looks finished. The lock keeps concurrent test processes (xdist workers,
    another checkout's run on the same server) from building it twice at once."""
    name = f"skilltree_template_{_migrations_digest()}"
    lock_path = Path(tempfile.gettempdir()) / f"{name}.lock"
    with lock_path.open("a") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            if not await _postgres_database_exists(name):
                await _build_template(name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return name


async def _postgres_database_exists(name: str) -> bool:
    admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL))
    try:
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await admin.close()
    return found is not None


async def _build_template(name: str) -> None:
    building = f"{name}_building_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{building}"')
        try:
            engine = create_engine(DatabaseSettings(url=_postgres_url(building)))
            try:
                await migrations.upgrade(engine)
            finally:
                await engine.dispose()
            await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    finally:
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
