"""Browser sessions through the API, with each session store: the database (embedded default)
and Redis (production). Lifetimes are checked with a frozen clock: idle and absolute expiry,
sliding, rotation, and every way a session ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import BrowserSession
from skilltree.accounts.sessions import RedisSessionStore, SessionRecord
from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import AuthSettings, RedisSettings, Settings
from skilltree.platform.crypto import digest
from skilltree.platform.db import Database
from tests.support.accounts import PASSWORD, last_token, register_and_verify, sign_in
from tests.support.redis import REDIS_URL, isolated_prefix

NEW_PASSWORD = "a much longer new passphrase"
# The Redis store takes the request's database session like every store, and ignores it.
NO_DB = cast(AsyncSession, cast(Any, None))


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return settings.model_copy(update={"redis": shared_state})


async def test_without_a_session_me_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")

    assert response.status_code == 401
    assert response.json()["type"] == "/problems/not-authenticated"


async def test_an_idle_session_expires_after_30_minutes(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    await sign_in(client)

    clock.advance(minutes=30)

    assert (await client.get("/v1/me")).status_code == 401


async def test_activity_slides_the_idle_expiry(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    await sign_in(client)

    for _ in range(4):
        clock.advance(minutes=20)
        assert (await client.get("/v1/me")).status_code == 200


async def test_a_session_ends_at_its_absolute_ttl_however_active(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    short = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"session_absolute_hours": 2})}
    )
    app = create_app(short, database=database, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await register_and_verify(client, outbox)
            await sign_in(client)
            for _ in range(5):  # a request every 20 minutes: never idle
                clock.advance(minutes=20)
                assert (await client.get("/v1/me")).status_code == 200
            clock.advance(minutes=20)  # two hours after sign-in

            assert (await client.get("/v1/me")).status_code == 401


def test_sessions_last_7_days_by_default() -> None:
    assert AuthSettings().session_absolute_hours == 7 * 24
    assert AuthSettings().session_idle_minutes == 30


async def test_sign_in_always_issues_a_new_session_id(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    planted = {"cookie": "skilltree_session=planted-by-an-attacker"}

    response = await second_client.post(
        "/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD}, headers=planted
    )

    issued = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert issued != "planted-by-an-attacker"
    assert (await client.get("/v1/me", headers=planted)).status_code == 401


async def test_logout_ends_the_session(client: httpx.AsyncClient, outbox: Path) -> None:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)
    old_cookie = client.cookies.get("skilltree_session")

    response = await client.post("/v1/auth/logout", headers=browser.write_headers)

    assert response.status_code == 204
    client.cookies.set("skilltree_session", old_cookie or "")
    assert (await client.get("/v1/me")).status_code == 401


async def test_logout_all_ends_every_device(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    laptop = await sign_in(client)
    await sign_in(second_client)

    await client.post("/v1/auth/logout-all", headers=laptop.write_headers)

    assert (await second_client.get("/v1/me")).status_code == 401


async def test_sessions_are_listed_and_one_can_be_ended(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    laptop = await sign_in(client)
    await sign_in(second_client)

    sessions = (await client.get("/v1/me/sessions")).json()["items"]
    other = next(s for s in sessions if not s["current"])
    response = await client.delete(f"/v1/me/sessions/{other['id']}", headers=laptop.write_headers)

    assert len(sessions) == 2
    assert response.status_code == 204
    assert (await second_client.get("/v1/me")).status_code == 401
    assert (await client.get("/v1/me")).status_code == 200


async def test_another_users_session_is_a_404(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    await register_and_verify(second_client, outbox, email="bob@example.org", name="Bob")
    ada = await sign_in(client)
    await sign_in(second_client, email="bob@example.org")
    bobs = (await second_client.get("/v1/me/sessions")).json()["items"][0]["id"]

    response = await client.delete(f"/v1/me/sessions/{bobs}", headers=ada.write_headers)

    assert response.status_code == 404
    assert (await second_client.get("/v1/me")).status_code == 200


async def test_a_password_reset_ends_every_session(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    await sign_in(client)

    accepted = await second_client.post(
        "/v1/auth/password-reset", json={"email": "ada@example.org"}
    )
    confirm = await second_client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": last_token(outbox), "password": NEW_PASSWORD},
    )

    assert accepted.status_code == 202
    assert confirm.status_code == 204
    assert (await client.get("/v1/me")).status_code == 401
    await sign_in(second_client, password=NEW_PASSWORD)


async def test_changing_the_password_rotates_this_session_and_ends_the_others(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)
    await sign_in(second_client)
    before = client.cookies.get("skilltree_session")

    response = await client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=browser.write_headers,
    )

    assert response.status_code == 200
    assert client.cookies.get("skilltree_session") != before
    assert response.json()["csrf_token"] != browser.csrf_token
    assert (await client.get("/v1/me")).status_code == 200
    assert (await second_client.get("/v1/me")).status_code == 401


# --- the Redis store itself -----------------------------------------------------------------


@pytest.fixture
async def redis_store() -> AsyncIterator[tuple[RedisSessionStore, Redis, str]]:
    async with isolated_prefix() as prefix:
        redis = Redis.from_url(REDIS_URL, decode_responses=True)
        clock = FrozenClock()
        yield RedisSessionStore(redis, prefix, clock.now), redis, prefix
        await redis.aclose()


def a_session(user_id: int = 7, token_hash: str = "a" * 64) -> SessionRecord:
    now = FrozenClock().now()
    return SessionRecord(
        id=0,
        user_id=user_id,
        token_hash=token_hash,
        csrf_token="csrf",
        created_at=now,
        last_seen_at=now,
        idle_expires_at=now + timedelta(minutes=30),
        absolute_expires_at=now + timedelta(days=7),
        user_agent="test",
        ip="127.0.0.1",
    )


@pytest.mark.redis
async def test_redis_keys_expire_with_the_session(
    redis_store: tuple[RedisSessionStore, Redis, str],
) -> None:
    store, redis, prefix = redis_store
    record = await store.open(NO_DB, a_session())

    ttl = await redis.ttl(f"{prefix}session:{record.token_hash}")

    assert 29 * 60 < ttl <= 30 * 60  # the idle expiry comes first


@pytest.mark.redis
async def test_activity_does_not_revive_a_session_ended_elsewhere(
    redis_store: tuple[RedisSessionStore, Redis, str],
) -> None:
    store, redis, prefix = redis_store
    record = await store.open(NO_DB, a_session())
    assert await store.delete(NO_DB, record.user_id, record.id)

    await store.save_activity(NO_DB, record)

    assert await store.find(NO_DB, record.token_hash) is None
    assert await redis.exists(f"{prefix}session:{record.token_hash}") == 0


@pytest.mark.redis
async def test_a_session_cannot_be_ended_by_another_user(
    redis_store: tuple[RedisSessionStore, Redis, str],
) -> None:
    store, _, _ = redis_store
    record = await store.open(NO_DB, a_session(user_id=7))

    assert not await store.delete(NO_DB, 8, record.id)
    assert await store.find(NO_DB, record.token_hash) is not None


async def test_the_store_keeps_only_a_digest_of_the_cookie_secret(
    shared_state: RedisSettings, database: Database, client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    await sign_in(client)
    secret = client.cookies["skilltree_session"]

    stored = await stored_sessions(shared_state, database)

    assert len(stored) == 1
    assert stored[0]["token_hash"] == digest(secret)
    assert all(secret not in str(value) for value in stored[0].values())


async def stored_sessions(shared_state: RedisSettings, database: Database) -> list[dict[str, Any]]:
    """Every stored session, read straight from where the store keeps them."""
    if shared_state.url is None:
        async with database.sessionmaker() as session:
            rows = (await session.execute(select(BrowserSession))).scalars()
            return [
                {c: getattr(row, c) for c in ("token_hash", "csrf_token", "ip")} for row in rows
            ]
    redis = Redis.from_url(shared_state.url, decode_responses=True)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{shared_state.key_prefix}session:*")]
        return [dict(await redis.hgetall(k)) for k in keys]
    finally:
        await redis.aclose()
