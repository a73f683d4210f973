"""The caller kept between requests: what a known credential costs, and when the cache
refuses to answer (no way to hear of revocations, an answer older than an invalidation).
Revocation across instances: tests/accounts/test_across_instances.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.accounts.context import Account, SignedIn
from skilltree.accounts.principal_cache import (
    CHANNEL,
    EVERYONE,
    PrincipalCache,
    principal_cache_for,
)
from skilltree.app import create_app
from skilltree.platform.broadcast import LocalBroadcaster
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RedisSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.models import utc_now
from tests.support.accounts import (
    Browser,
    bearer_headers,
    register_and_verify,
    sign_in,
    store_questions,
)
from tests.support.progress import WEB, People, import_roadmap
from tests.support.queries import count_statements
from tests.support.redis import REDIS_URL, isolated_prefix


def signed_in(user_id: int) -> SignedIn:
    account = Account(
        id=user_id,
        email=f"user{user_id}@example.org",
        display_name="User",
        email_verified=True,
        is_admin=False,
        mfa_enabled=False,
        created_at=utc_now(),
    )
    return SignedIn(account, token_family="family")


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def listening_cache(
    broadcaster: LocalBroadcaster, timer: Ticking | None = None
) -> PrincipalCache:
    cache = PrincipalCache(broadcaster, ttl_seconds=30, max_entries=2, timer=timer or Ticking())
    await cache.start()
    for _ in range(100):  # the listener subscribes on its first turn of the loop
        if cache.usable():
            break
        await asyncio.sleep(0)
    assert cache.usable()
    return cache


async def test_a_known_caller_is_answered_from_memory_until_forgotten() -> None:
    cache = await listening_cache(LocalBroadcaster())
    cache.keep("token:a", signed_in(1), generation=cache.generation())

    found = cache.find("token:a")
    assert found is not None
    assert found.signed_in.user.id == 1
    await cache.announce({1})
    assert cache.find("token:a") is None
    await cache.close()


async def test_an_answer_looked_up_before_an_invalidation_is_not_kept() -> None:
    cache = await listening_cache(LocalBroadcaster())
    generation = cache.generation()  # a request starts its lookup ...
    await cache.announce({1})  # ... the user signs out meanwhile ...
    cache.keep("token:a", signed_in(1), generation=generation)  # ... the old answer arrives

    assert cache.find("token:a") is None
    await cache.close()


async def test_nothing_is_kept_while_revocations_cannot_be_heard() -> None:
    broadcaster = LocalBroadcaster()
    cache = await listening_cache(broadcaster)
    broadcaster.connected = False  # Redis unreachable: the subscription is down

    cache.keep("token:a", signed_in(1), generation=cache.generation())
    assert cache.find("token:a") is None

    broadcaster.connected = True
    assert cache.find("token:a") is None
    await cache.close()


async def test_what_was_kept_before_a_reconnection_is_not_trusted_after_it() -> None:
    broadcaster = LocalBroadcaster()
    cache = await listening_cache(broadcaster)
    cache.keep("token:a", signed_in(1), generation=cache.generation())

    broadcaster.epoch += 1  # reconnected: messages may have been missed meanwhile

    assert cache.find("token:a") is None
    await cache.close()


async def test_entries_expire_and_the_cache_is_bounded() -> None:
    timer = Ticking()
    cache = await listening_cache(LocalBroadcaster(), timer)
    for name in ("a", "b", "c"):
        cache.keep(f"token:{name}", signed_in(1), generation=cache.generation())
    assert cache.find("token:a") is None  # three kept, room for two
    assert cache.find("token:c") is not None

    timer.now = 31.0
    assert cache.find("token:c") is None
    await cache.close()


async def test_a_cache_that_was_never_started_keeps_nothing() -> None:
    cache = PrincipalCache(LocalBroadcaster(), ttl_seconds=30, max_entries=10)
    cache.keep("token:a", signed_in(1), generation=cache.generation())
    assert cache.find("token:a") is None


async def test_me_by_a_known_bearer_token_runs_no_statement(
    people: People, engine: AsyncEngine
) -> None:
    """Before the cache: one statement (the token's family joined with its user)."""
    ada: Browser = await people("Ada")
    bearer = await bearer_headers(ada)
    await ada.client.get("/v1/me", headers=bearer)

    with count_statements(engine) as log:
        response = await ada.client.get("/v1/me", headers=bearer)

    assert response.status_code == 200, response.text
    assert log.count == 0, log.statements


async def test_an_expired_token_is_refused_even_when_its_caller_is_kept(
    people: People, clock: FrozenClock
) -> None:
    ada: Browser = await people("Ada")
    bearer = await bearer_headers(ada)
    ada.client.cookies.clear()
    assert (await ada.client.get("/v1/me", headers=bearer)).status_code == 200

    clock.advance(minutes=11)  # access tokens live ten minutes

    assert (await ada.client.get("/v1/me", headers=bearer)).status_code == 401


@pytest.mark.parametrize("minutes", [0, 2])
async def test_a_kept_api_key_still_records_its_last_use_to_the_minute(
    people: People, clock: FrozenClock, minutes: int
) -> None:
    ada: Browser = await people("Ada")
    created = await ada.client.post(
        "/v1/me/api-keys",
        json={"name": "sync", "scopes": ["progress:read"]},
        headers=ada.write_headers,
    )
    key = {"authorization": f"Bearer {created.json()['key']}"}
    first_use = clock.now()
    assert (await ada.client.get("/v1/me", headers=key)).status_code == 200

    clock.advance(minutes=minutes)
    assert (await ada.client.get("/v1/me", headers=key)).status_code == 200

    listed = (await ada.client.get("/v1/me/api-keys")).json()["items"]
    recorded = datetime.fromisoformat(listed[0]["last_used_at"])
    assert recorded == first_use + timedelta(minutes=minutes)


async def _wipe(prefix: str) -> None:
    """What FLUSHDB, or a restart of a Redis that keeps nothing on disk, does to this test's
    keys (the shared test server's other tenants keep theirs)."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        assert keys  # the session's record was there
        await client.delete(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def signed_in_on_redis(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path, prefix: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app keeping its sessions in Redis under `prefix`, and a client signed in to it."""
    on_redis = settings.model_copy(
        update={"redis": RedisSettings(url=REDIS_URL, key_prefix=prefix)}
    )
    app = create_app(on_redis, database=database, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await register_and_verify(client, outbox)
            await sign_in(client)
            yield app, client


@pytest.mark.redis
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_session_wiped_from_redis_is_refused_at_the_next_request(
    settings: Settings, database: Database, clock: FrozenClock, outbox: Path
) -> None:
    async with (
        isolated_prefix() as prefix,
        signed_in_on_redis(settings, database, clock, outbox, prefix) as (app, client),
    ):
        kept = principal_cache_for(app.state.resources.broadcaster, settings.auth)
        assert (await client.get("/v1/me")).status_code == 200
        hits = kept.hits
        assert (await client.get("/v1/me")).status_code == 200
        assert kept.hits == hits + 1  # answered from memory

        await _wipe(prefix)
        after_wipe = await client.get("/v1/me")

    assert after_wipe.status_code == 401
    assert after_wipe.json()["type"] == "/problems/not-authenticated"


@pytest.mark.redis
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_kept_session_its_store_lost_is_refused_after_one_question_to_the_store(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    outbox: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The application's own path (a route the fast path does not answer) asks the store once
    whether a kept session is still there, and refuses it when it is not."""
    async with (
        isolated_prefix() as prefix,
        signed_in_on_redis(settings, database, clock, outbox, prefix) as (_app, client),
    ):
        assert (await client.get("/v1/me/sessions")).status_code == 200
        await _wipe(prefix)
        asked = store_questions(monkeypatch)
        after_wipe = await client.get("/v1/me/sessions")

    assert after_wipe.status_code == 401
    assert len(asked) == 1


async def test_a_malformed_announcement_does_not_stop_the_cache_hearing_later_ones() -> None:
    broadcaster = LocalBroadcaster()
    cache = await listening_cache(broadcaster)

    await broadcaster.publish(CHANNEL, {"users": 5}, keep=False)  # not a list
    for _ in range(200):  # its listener subscribes again after a short pause
        await asyncio.sleep(0.01)
        cache.keep("token:a", signed_in(1), generation=cache.generation())
        if cache.find("token:a") is not None:
            break
    await broadcaster.publish(CHANNEL, {"users": [1]}, keep=False)
    for _ in range(100):
        if cache.find("token:a") is None:
            break
        await asyncio.sleep(0.01)

    assert cache.find("token:a") is None
    await cache.close()


async def test_a_callers_roles_are_answered_from_memory_until_forgotten() -> None:
    cache = await listening_cache(LocalBroadcaster())
    cache.keep("token:a", signed_in(1), generation=cache.generation())
    cache.keep_roles(1, {7: "mentor"}, generation=cache.generation())
    assert cache.find_roles(1) == {7: "mentor"}

    await cache.announce(set(), roles_of={1})  # a change of role: the sign-in stays

    assert cache.find_roles(1) is None
    assert cache.find("token:a") is not None
    cache.keep_roles(1, {7: "learner"}, generation=cache.generation())
    await cache.announce({1})  # a sign-out forgets the roles too
    assert cache.find_roles(1) is None
    await cache.close()


async def test_roles_looked_up_before_an_invalidation_are_not_kept() -> None:
    cache = await listening_cache(LocalBroadcaster())
    generation = cache.generation()  # a unit of work opens ...
    await cache.announce(set(), roles_of={2})  # ... another user's role changes meanwhile ...
    cache.keep_roles(1, {7: "mentor"}, generation=generation)  # ... the roles arrive

    assert cache.find_roles(1) is None
    await cache.close()


async def test_every_callers_roles_are_forgotten_when_any_organisation_goes() -> None:
    cache = await listening_cache(LocalBroadcaster())
    cache.keep_roles(1, {7: "mentor"}, generation=cache.generation())

    await cache.announce(set(), roles_of={EVERYONE})

    assert cache.find_roles(1) is None
    await cache.close()


async def test_roles_are_kept_only_while_changes_can_be_heard() -> None:
    broadcaster = LocalBroadcaster()
    cache = await listening_cache(broadcaster)
    cache.keep_roles(1, {7: "mentor"}, generation=cache.generation())

    broadcaster.epoch += 1  # reconnected: messages may have been missed meanwhile
    assert cache.find_roles(1) is None
    broadcaster.connected = False
    cache.keep_roles(1, {7: "mentor"}, generation=cache.generation())
    broadcaster.connected = True
    assert cache.find_roles(1) is None
    await cache.close()


async def test_a_progress_write_by_a_known_caller_reads_no_membership(
    people: People, engine: AsyncEngine
) -> None:
    """Before: every write read the caller's organisation roles first."""
    ada: Browser = await people("Ada")
    await import_roadmap(ada, WEB, visibility="public")
    bearer = await bearer_headers(ada)
    first = await ada.client.put(
        "/v1/me/progress/web/http", json={"status": "done"}, headers=bearer
    )
    assert first.status_code == 200, first.text

    with count_statements(engine) as log:
        response = await ada.client.put(
            "/v1/me/progress/web/http", json={"status": "in_progress"}, headers=bearer
        )

    assert response.status_code == 200, response.text
    assert not [s for s in log.statements if "memberships" in s], log.statements


async def test_finishing_a_topic_reads_no_membership_after_the_commit_either(
    people: People, engine: AsyncEngine
) -> None:
    """The live feed of a finished topic asks for the learner's organisations once the write
    has committed: a known caller's are kept too."""
    ada: Browser = await people("Ada")
    await import_roadmap(ada, WEB, visibility="public")
    bearer = await bearer_headers(ada)
    first = await ada.client.put(
        "/v1/me/progress/web/http", json={"status": "in_progress"}, headers=bearer
    )
    assert first.status_code == 200, first.text

    with count_statements(engine) as log:
        response = await ada.client.put(
            "/v1/me/progress/web/http", json={"status": "done"}, headers=bearer
        )

    assert response.status_code == 200, response.text
    assert not [s for s in log.statements if "memberships" in s], log.statements
