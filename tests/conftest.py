"""Shared fixtures: real databases built by the migrations, one rolled-back transaction per test.

Every test that asks for `database`, `app` or `client` runs on each backend: SQLite (the
embedded default), PostgreSQL (production) and MariaDB (MySQL's family).
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from skilltree.accounts import passwords
from skilltree.app import create_app
from skilltree.platform import migrations
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import (
    AppSettings,
    AuthSettings,
    DatabaseSettings,
    LogSettings,
    MailSettings,
    RateLimitSettings,
    RedisSettings,
    SearchSettings,
    Settings,
)
from skilltree.platform.db import Database, create_engine
from skilltree.roadmaps.builtin import load_builtin
from skilltree.roadmaps.importing import ParsedRoadmap
from tests.support.accounts import Browser, register_and_verify, sign_in
from tests.support.databases import migrated_postgres_database, temporary_mariadb_database
from tests.support.redis import REDIS_URL, isolated_prefix
from tests.support.route_analysis import analysed_once

# The cheapest argon2id parameters: the same algorithm and code path as production at a fraction
# of the cost. Production parameters cost ~100 ms per hash, and the suite signs thousands of
# people up and in. A test about the parameters themselves asks for `production_hashing`.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setattr(passwords, "_hasher", FAST_HASHER)
    patch.setattr(passwords, "_DECOY_HASH", FAST_HASHER.hash("decoy password"))
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def routes_analysed_once() -> Iterator[None]:
    """Every app a test builds shares one analysis of each route (tests/support/route_analysis)."""
    with analysed_once():
        yield


@pytest.fixture
def production_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    production = PasswordHasher()
    monkeypatch.setattr(passwords, "_hasher", production)
    monkeypatch.setattr(passwords, "_DECOY_HASH", production.hash("decoy password"))


@pytest.fixture(scope="session")
async def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    path = tmp_path_factory.mktemp("sqlite") / "skilltree.db"
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    await migrations.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def postgresql_engine() -> AsyncIterator[AsyncEngine]:
    async with migrated_postgres_database() as url:
        engine = create_engine(DatabaseSettings(url=url))
        yield engine
        await engine.dispose()


@pytest.fixture(scope="session")
async def mariadb_engine() -> AsyncIterator[AsyncEngine]:
    async with temporary_mariadb_database() as url:
        engine = create_engine(DatabaseSettings(url=url))
        await migrations.upgrade(engine)
        yield engine
        await engine.dispose()


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """The migrated engine of each backend in turn."""
    selected: AsyncEngine = request.getfixturevalue(f"{request.param}_engine")
    return selected


@pytest.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    """A Database whose every session joins one transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        sessions = async_sessionmaker(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
        yield Database(engine, sessions)
        await transaction.rollback()


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessionmaker() as session:
        yield session


@pytest.fixture
def settings(engine: AsyncEngine, tmp_path: Path) -> Settings:
    template = _settings_for_tests(
        engine.url.render_as_string(hide_password=False), _environment_read_by_settings()
    )
    # A deep copy: a test may change what its own settings hold (a list of providers, say).
    settings = template.model_copy(deep=True)
    settings.mail = settings.mail.model_copy(update={"outbox_dir": tmp_path / "outbox"})
    return settings


@functools.cache
def _settings_for_tests(database_url: str, _environment: tuple[object, ...]) -> Settings:
    """The settings every test starts from, built once per database and environment: building
    them reads the environment for each of their twenty groups (13 ms a test, a tenth of an
    ordinary test's set-up), and copying them costs a fiftieth of that."""
    return Settings(
        app=AppSettings(env="test"),
        database=DatabaseSettings(url=database_url),
        log=LogSettings(format="json"),
        mail=MailSettings(),
        # The test client speaks plain http, where browsers (and httpx) drop Secure cookies.
        auth=AuthSettings(cookie_secure=False, allowed_origins=["http://test"]),
        # Tests sign many people in from one address; tests/platform/test_rate_limit.py turns
        # the limits on with small quotas.
        rate_limit=RateLimitSettings(enabled=False),
        # Search tests apply events to the index themselves (tests/search/conftest.py);
        # tests/search/test_in_process_indexing.py turns in-process indexing on.
        search=SearchSettings(index_in_process="off"),
    )


def _environment_read_by_settings() -> tuple[object, ...]:
    """What settings are read from besides their arguments: the SKILLTREE_ variables, and the
    .env file of the working directory (a test may set either)."""
    variables = sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("SKILLTREE_"))
    dotenv = Path(".env")
    return (*variables, dotenv.read_bytes() if dotenv.is_file() else None)


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
async def shared_state(request: pytest.FixtureRequest) -> AsyncIterator[RedisSettings]:
    """Where state shared by instances (sessions, sign-in throttles) lives: the database, or a
    real Redis under a key prefix of this test's own. Modules opt in by overriding `settings`
    with `settings.model_copy(update={"redis": shared_state})`."""
    if request.param == "database":
        yield RedisSettings()
        return
    async with isolated_prefix() as prefix:
        yield RedisSettings(url=REDIS_URL, key_prefix=prefix)


@pytest.fixture
def clock() -> FrozenClock:
    """Time that moves only when a test says so (session expiry, token lifetimes)."""
    return FrozenClock()


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.mail.outbox_dir


@pytest.fixture
async def app(settings: Settings, database: Database, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture(scope="session")
def builtin_roadmap() -> ParsedRoadmap:
    """The built-in roadmap parsed once per run (parsing is pure; importing it is per test)."""
    return load_builtin()


@pytest.fixture
async def second_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser (its own cookie jar) talking to the same app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def people(app: FastAPI, outbox: Path) -> AsyncIterator[Callable[[str], Awaitable[Browser]]]:
    """Signs up, verifies and signs in a new person per call, each with their own browser."""
    async with AsyncExitStack() as stack:

        async def person(name: str) -> Browser:
            transport = httpx.ASGITransport(app=app)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://test")
            )
            email = f"{name.lower()}@example.org"
            await register_and_verify(client, outbox, email=email, name=name)
            return await sign_in(client, email=email)

        yield person


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of its own for the `skilltree` command, on a migrated SQLite file there."""
    from typer.testing import CliRunner

    from skilltree.cli import app as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "WARNING")
    assert CliRunner().invoke(cli, ["migrate", "upgrade"]).exit_code == 0
    return tmp_path
