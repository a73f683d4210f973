"""Liveness never touches dependencies; readiness reports the database honestly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from skilltree.app import create_app
from skilltree.platform.config import DatabaseSettings, Settings


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
