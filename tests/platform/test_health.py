"""Liveness never touches dependencies; readiness reports the database honestly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from skilltree.app import create_app
from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings, Settings
from skilltree.platform.db import create_engine
from skilltree.platform.draining import begin_draining, reset_draining


@pytest.fixture
async def client_without_database() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose database cannot be reached (nothing listens on port 1)."""
    unreachable = DatabaseSettings(url="postgresql+asyncpg://127.0.0.1:1/none")
    app = create_app(Settings(database=unreachable))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_livez_answers_without_touching_the_database(
    client_without_database: httpx.AsyncClient,
) -> None:
    response = await client_without_database.get("/livez")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_ready_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_readyz_is_a_503_problem_when_the_database_is_unreachable(
    client_without_database: httpx.AsyncClient,
) -> None:
    response = await client_without_database.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/not-ready"
    assert problem["checks"] == {"database": "failing"}
    assert "127.0.0.1" not in response.text


async def test_startupz_passes_once_the_schema_is_at_the_newest_migration(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/startupz")

    assert response.status_code == 200
    assert response.json() == {"status": "started", "schema_revision": migrations.head_revision()}
    assert response.headers["cache-control"] == "no-store"


async def test_startupz_is_a_503_problem_while_the_schema_awaits_its_migrations(
    tmp_path: Path,
) -> None:
    empty = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")
    app = create_app(Settings(database=empty))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/startupz")
            live = await client.get("/livez")

    assert response.status_code == 503
    problem = response.json()
    assert problem["type"] == "/problems/not-started"
    assert "skilltree migrate upgrade" in problem["detail"]
    assert live.status_code == 200  # not started is not dead


async def test_startupz_passes_on_a_schema_a_newer_release_migrated(tmp_path: Path) -> None:
    """During a rolling deployment the new release migrates first; an instance of this release
    that starts (or restarts) then must still start: the migrations keep the schema usable by
    the previous release (docs/migrations.md). A revision this code does not know is newer."""
    newer = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}")
    engine = create_engine(newer)
    await migrations.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from-newer'"))
    await engine.dispose()
    app = create_app(Settings(database=newer))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/startupz")

    assert response.status_code == 200
    assert response.json() == {"status": "started", "schema_revision": "from-newer"}


async def test_startupz_is_a_503_problem_when_the_database_is_unreachable(
    client_without_database: httpx.AsyncClient,
) -> None:
    response = await client_without_database.get("/startupz")

    assert response.status_code == 503
    assert response.json()["type"] == "/problems/not-started"


@pytest.fixture
def draining() -> Iterator[None]:
    begin_draining()
    yield
    reset_draining()


@pytest.mark.usefixtures("draining")
async def test_readyz_turns_503_while_draining_and_the_api_still_serves(
    client: httpx.AsyncClient,
) -> None:
    ready = await client.get("/readyz")
    served = await client.get("/livez")

    assert ready.status_code == 503
    assert ready.json()["checks"] == {"shutdown": "draining"}
    assert served.status_code == 200
