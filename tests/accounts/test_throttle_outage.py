"""Sign-in while the Redis that holds the sign-in throttles is down: refused with 503 and
Retry-After (attempts that cannot be counted are not accepted), and back by itself once Redis is.
Runs on a private redis-server that the test stops and starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.config import RedisSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import PASSWORD, register_and_verify
from tests.support.private_redis import PrivateRedis, private_redis

pytestmark = pytest.mark.redis

SIGN_INS = ["/v1/auth/login", "/v1/auth/token"]
ADA = {"email": "ada@example.org", "password": PASSWORD}


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, redis_server: PrivateRedis) -> Settings:
    # The rate limiter is off (as in every test but its own), so the throttle meets the outage.
    redis = RedisSettings(url=redis_server.url, timeout_seconds=0.5)
    return settings.model_copy(update={"redis": redis})


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", SIGN_INS)
async def test_sign_in_while_redis_is_down_is_a_503_with_retry_after_then_recovers(
    client: httpx.AsyncClient, outbox: Path, redis_server: PrivateRedis, path: str
) -> None:
    await register_and_verify(client, outbox)

    redis_server.stop()
    during = [await client.post(path, json=ADA) for _ in range(2)]
    wrong = await client.post(path, json={**ADA, "password": "not the password"})
    redis_server.start()
    after = await client.post(path, json=ADA)

    for refused in [*during, wrong]:
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/rate-limiter-unavailable"
        assert refused.headers["retry-after"] == "5"
    assert after.status_code == 200
