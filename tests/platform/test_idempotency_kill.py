"""kill -9 of a server holding an Idempotency-Key claim mid-request (decision 0015): after a
restart, a retry with the same key is answered correctly — the lease lapses and the request runs
once, and a response stored before the kill replays. A real `skilltree serve` on PostgreSQL.

The request is held mid-route by a table lock the test takes on `roadmaps`: the claim is
committed (its own short transaction), the route's INSERT waits on the lock, and the server is
killed while it waits. Nothing inside the server is faked, and the clock is the real one, so the
retry waits out a real lease: a short one (SKILLTREE_HTTP_IDEMPOTENCY_LEASE_SECONDS), which is
renewed and lapses exactly as the 30-second default does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database
from tests.support.accounts import PASSWORD, register_and_verify
from tests.support.databases import migrated_postgres_database
from tests.support.processes import (
    base_env,
    free_port,
    running,
    serve_command,
    wait_until_ready,
)

HELD = {"slug": "held-by-a-lock", "title": "Held"}
FINISHED = {"slug": "finished-before-the-kill", "title": "Finished"}
# Short, so the retry does not wait out the default 30 s. A restart on a quiet machine is
# quicker, so retries meet the live lease and are answered 409 first; under load the restart
# may outlast it, and the timing assertion below still shows nothing ran before it lapsed.
LEASE_SECONDS = 6.0
# The lease, plus time for the restarted server to start and for Retry-After pauses.
RETRY_SECONDS = LEASE_SECONDS + 60
# Clock resolution between PostgreSQL's now() and this process's monotonic clock.
CLOCK_SLACK_SECONDS = 0.5


@pytest.mark.postgres
async def test_a_server_killed_holding_a_lease_answers_the_retry_once_the_lease_lapses(
    tmp_path: Path,
) -> None:
    async with migrated_postgres_database() as url:
        env = base_env(
            url,
            SKILLTREE_MAIL_OUTBOX_DIR=str(tmp_path / "mail"),
            SKILLTREE_HTTP_IDEMPOTENCY_LEASE_SECONDS=str(LEASE_SECONDS),
        )
        database = Database.from_settings(DatabaseSettings(url=url))
        try:
            await _kill_mid_request_and_retry(env, database, tmp_path)
        finally:
            await database.dispose()


async def _kill_mid_request_and_retry(env: dict[str, str], database: Database, tmp: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(serve_command(port), env, tmp / "first.log") as first:
        await asyncio.to_thread(wait_until_ready, base, first, 90, tmp / "first.log")
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            bearer = await _bearer(client, tmp / "mail")
            finished = await _create(client, bearer, "finished-key", FINISHED)
            assert finished.status_code == 201, finished.text
            async with _roadmaps_locked(database):
                held = asyncio.create_task(_create(client, bearer, "held-key", HELD))
                await _until_the_route_waits_on_the_lock(database)
                first.kill()
                await asyncio.to_thread(first.wait, 10)
                with pytest.raises(httpx.TransportError):
                    await held  # never acknowledged: the client must retry
                # The process is gone: nothing renews the claim any more.
                claimed = await _claim_of(database, "held-key")
                lease_ends = time.monotonic() + claimed.seconds_left

    # The claim outlived its process, as a lease: due within the lease, not in 24 h.
    assert claimed.status_code is None
    assert 0 < claimed.seconds_left <= LEASE_SECONDS

    with running(serve_command(port), env, tmp / "second.log") as second:
        await asyncio.to_thread(wait_until_ready, base, second, 90, tmp / "second.log")
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            replayed = await _create(client, bearer, "finished-key", FINISHED)
            statuses, ran, ran_sent_at = await _retry_until_answered(
                client, bearer, "held-key", HELD
            )
            again = await _create(client, bearer, "held-key", HELD)

    assert replayed.status_code == 201
    assert replayed.headers["idempotency-replayed"] == "true"
    assert replayed.json() == finished.json()
    # While the dead request's lease runs: 409 with Retry-After; then the request runs.
    assert set(statuses) <= {409}
    assert ran.status_code == 201, ran.text
    # Not before the dead request's lease lapsed.
    assert ran_sent_at >= lease_ends - CLOCK_SLACK_SECONDS
    assert "idempotency-replayed" not in ran.headers
    assert again.headers["idempotency-replayed"] == "true"
    assert await _roadmaps_with_slug(database, HELD["slug"]) == 1
    assert await _roadmaps_with_slug(database, FINISHED["slug"]) == 1


async def _bearer(client: httpx.AsyncClient, outbox: Path) -> dict[str, str]:
    await register_and_verify(client, outbox)
    token = await client.post(
        "/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert token.status_code == 200, token.text
    client.cookies.clear()  # the bearer token alone speaks for the caller
    return {"authorization": f"Bearer {token.json()['access_token']}"}


async def _create(
    client: httpx.AsyncClient, bearer: dict[str, str], key: str, body: dict[str, str]
) -> httpx.Response:
    return await client.post("/v1/roadmaps", json=body, headers=bearer | {"idempotency-key": key})


async def _retry_until_answered(
    client: httpx.AsyncClient, bearer: dict[str, str], key: str, body: dict[str, str]
) -> tuple[list[int], httpx.Response, float]:
    """Retry as a well-behaved client does: after each 409, wait what Retry-After says.
    Also when the answered retry was sent."""
    statuses: list[int] = []
    deadline = time.monotonic() + RETRY_SECONDS
    while time.monotonic() < deadline:
        sent_at = time.monotonic()
        response = await _create(client, bearer, key, body)
        if response.status_code != 409:
            return statuses, response, sent_at
        assert response.json()["type"].endswith("/idempotency-key-in-flight"), response.text
        statuses.append(response.status_code)
        await asyncio.sleep(float(response.headers["retry-after"]))
    raise AssertionError(f"still 409 after {RETRY_SECONDS} s: the claim never lapsed")


@asynccontextmanager
async def _roadmaps_locked(database: Database) -> AsyncIterator[AsyncConnection]:
    """Hold a lock that lets readers through but makes every INSERT into roadmaps wait."""
    async with database.engine.connect() as connection:
        await connection.execute(text("LOCK TABLE roadmaps IN EXCLUSIVE MODE"))
        try:
            yield connection
        finally:
            await connection.rollback()


async def _until_the_route_waits_on_the_lock(database: Database) -> None:
    deadline = time.monotonic() + 60
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'roadmaps' AND NOT l.granted"
    )
    while time.monotonic() < deadline:
        async with database.engine.connect() as connection:
            if await connection.scalar(query):
                return
        # Another process's progress: nothing to wait on across processes but polling.
        await asyncio.sleep(0.05)
    raise AssertionError("the request never reached the INSERT into roadmaps")


class _Claim(NamedTuple):
    status_code: int | None
    seconds_left: float


async def _claim_of(database: Database, key: str) -> _Claim:
    async with database.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT status_code, extract(epoch FROM expires_at - now()) AS seconds_left "
                    "FROM idempotency_keys WHERE key = :key"
                ),
                {"key": key},
            )
        ).one()
    return _Claim(row.status_code, float(row.seconds_left))


async def _roadmaps_with_slug(database: Database, slug: str) -> int:
    async with database.engine.connect() as connection:
        query = text("SELECT count(*) FROM roadmaps WHERE slug = :slug")
        return int(await connection.scalar(query, {"slug": slug}) or 0)
