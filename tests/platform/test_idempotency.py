"""Idempotency-Key on creating POSTs: replay, mismatch, in flight, expiry, per-caller scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.http.idempotency import (
    LEASE,
    claim,
    delete_expired_keys,
    fingerprint,
    idempotent_routes,
    purge_expired_keys,
)
from skilltree.platform.idempotency_records import IdempotencyRecord
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]
JSON = "application/json"


@pytest.fixture
async def ada(people: People) -> Browser:
    person = await people("Ada")
    person.client.headers.update(person.write_headers)
    return person


async def create(
    person: Browser,
    key: str | None,
    body: dict[str, Any],
    path: str = "/v1/roadmaps",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"content-type": JSON} | ({"idempotency-key": key} if key else {}) | (headers or {})
    return await person.client.post(
        path, content=orjson.dumps(body), headers=sent | person.write_headers
    )


async def stored_keys(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(select(func.count(IdempotencyRecord.id)))).scalar_one()


async def roadmap_count(person: Browser) -> int:
    total: int = (await person.client.get("/v1/roadmaps")).json()["total"]
    return total


PLAN = {"slug": "plan", "title": "Plan"}


async def test_a_retry_with_the_same_key_replays_the_first_response(ada: Browser) -> None:
    first = await create(ada, "key-1", PLAN)

    retry = await create(ada, "key-1", PLAN)

    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.content == first.content
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"]
    assert retry.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers
    assert await roadmap_count(ada) == 1


async def test_the_same_key_for_a_different_body_is_a_422_problem(ada: Browser) -> None:
    await create(ada, "key-1", PLAN)

    response = await create(ada, "key-1", {"slug": "other", "title": "Other"})

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/idempotency-key-reused"
    assert await roadmap_count(ada) == 1


async def test_the_same_key_on_another_route_is_a_422_problem(ada: Browser) -> None:
    await create(ada, "key-1", PLAN)

    response = await create(ada, "key-1", {"title": "HTTP"}, path="/v1/roadmaps/plan/topics")

    assert response.status_code == 422


async def test_a_retry_while_the_first_request_runs_is_a_409_problem(
    ada: Browser, database: Database, clock: FrozenClock
) -> None:
    created = await ada.client.post(
        "/v1/me/api-keys", json={"name": "ci", "scopes": ["roadmaps:write"]}
    )
    bearer = {"authorization": f"Bearer {created.json()['key']}"}
    caller = f"api-key:{created.json()['id']}"  # keys belong to the credential
    body = orjson.dumps(PLAN)
    async with database.unit_of_work() as session:  # the first request, claimed and still running
        await claim(
            session,
            caller=caller,
            key="key-1",
            fingerprint=fingerprint("POST", "/v1/roadmaps", "", caller, JSON, body),
            now=clock.now(),
            ttl=timedelta(hours=24),
        )

    response = await create(ada, "key-1", PLAN, headers=bearer)

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/idempotency-key-in-flight"
    assert response.headers["retry-after"] == "1"
    assert await roadmap_count(ada) == 0


async def test_keys_are_scoped_per_caller(ada: Browser, people: People) -> None:
    eve = await people("Eve")
    await create(ada, "shared-key", PLAN)

    response = await create(eve, "shared-key", {"slug": "eves", "title": "Eve's"})

    assert response.status_code == 201
    assert "idempotency-replayed" not in response.headers
    assert response.json()["slug"] == "eves"


async def test_a_failed_request_releases_its_key(ada: Browser) -> None:
    await create(ada, None, PLAN)
    failed = await create(ada, "key-1", PLAN)  # 409: the slug is taken

    retried = await create(ada, "key-1", {"slug": "plan-2", "title": "Plan"})

    assert failed.status_code == 409
    assert retried.status_code == 201
    assert "idempotency-replayed" not in retried.headers


async def test_without_a_key_every_post_creates(ada: Browser) -> None:
    await create(ada, None, PLAN)

    await create(ada, None, {"title": "HTTP"}, path="/v1/roadmaps/plan/topics")
    await create(ada, None, {"title": "HTTP"}, path="/v1/roadmaps/plan/topics")

    assert (await ada.client.get("/v1/roadmaps/plan")).json()["topic_count"] == 2


async def test_keys_expire_and_the_cleanup_deletes_them(
    ada: Browser, database: Database, clock: FrozenClock
) -> None:
    # An API key outlives the session that a day of frozen-clock time would end.
    created = await ada.client.post(
        "/v1/me/api-keys", json={"name": "ci", "scopes": ["roadmaps:write"]}
    )
    bearer = {"authorization": f"Bearer {created.json()['key']}"}
    await create(ada, None, PLAN)
    topic = {"title": "HTTP"}

    async def add_topic() -> httpx.Response:
        return await create(ada, "key-1", topic, "/v1/roadmaps/plan/topics", headers=bearer)

    await add_topic()
    clock.advance(hours=23)
    async with database.unit_of_work() as session:
        assert await delete_expired_keys(session, clock.now()) == 0
    assert (await add_topic()).headers["idempotency-replayed"] == "true"

    clock.advance(hours=2)
    deleted = await purge_expired_keys(database, clock)

    assert deleted == 1
    assert await stored_keys(database) == 0
    again = await add_topic()
    assert again.status_code == 201
    assert "idempotency-replayed" not in again.headers
    tree = await ada.client.get("/v1/roadmaps/plan", headers=bearer)
    assert tree.json()["topic_count"] == 2


async def test_an_expired_key_not_yet_cleaned_up_is_free_again(
    ada: Browser, clock: FrozenClock
) -> None:
    created = await ada.client.post(
        "/v1/me/api-keys", json={"name": "ci", "scopes": ["roadmaps:write"]}
    )
    bearer = {"authorization": f"Bearer {created.json()['key']}"}
    await create(ada, "key-1", PLAN, headers=bearer)
    clock.advance(hours=25)

    response = await create(ada, "key-1", {"slug": "later", "title": "Later"}, headers=bearer)

    assert response.status_code == 201
    assert "idempotency-replayed" not in response.headers


async def test_an_anonymous_post_with_a_key_is_a_401_and_stores_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await client.post(
        "/v1/roadmaps", json=PLAN, headers={"idempotency-key": "anonymous"}
    )

    assert response.status_code == 401
    assert await stored_keys(database) == 0


@pytest.mark.parametrize("key", [b"x" * 256, b"tab\tinside", "ключ".encode()])
async def test_a_malformed_key_is_a_400_problem(ada: Browser, key: bytes) -> None:
    response = await ada.client.post("/v1/roadmaps", json=PLAN, headers={"idempotency-key": key})

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-idempotency-key"


async def test_a_replayed_api_key_is_the_same_key_and_is_stored_encrypted(
    people: People, database: Database
) -> None:
    ada = await people("Ada")
    headers = ada.write_headers | {"idempotency-key": "new-key"}
    body = {"name": "ci", "scopes": ["roadmaps:write"]}

    first = await ada.client.post("/v1/me/api-keys", json=body, headers=headers)
    retry = await ada.client.post("/v1/me/api-keys", json=body, headers=headers)

    secret = first.json()["key"]
    assert retry.json()["key"] == secret
    assert retry.headers["idempotency-replayed"] == "true"
    async with database.sessionmaker() as session:
        stored = (await session.execute(select(IdempotencyRecord.body))).scalar_one()
    assert stored is not None
    assert secret not in stored


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        ("/v1/orgs", b'{"slug": "team", "name": "Team"}', JSON),
        ("/v1/roadmaps/import", b"# Plan\n\n## A\n\n- B\n", "text/markdown"),
    ],
)
async def test_other_creating_routes_replay_too(
    ada: Browser, path: str, content: bytes, content_type: str
) -> None:
    headers = {"idempotency-key": "k", "content-type": content_type}

    first = await ada.client.post(path, content=content, headers=headers)
    retry = await ada.client.post(path, content=content, headers=headers)

    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.headers["idempotency-replayed"] == "true"
    assert retry.content == first.content


# POSTs that create nothing but must not run twice either: each call takes one more step (and
# /graphql, whose mutations do the same steps as these routes).
NOT_REPEATABLE = {"/v1/me/progress/{roadmap}/undo", "/v1/me/reviews/{card_id}", "/graphql"}
# Creating POSTs that take no key, each for a reason: an attachment streams to storage as it
# arrives (a key's fingerprint would hold the whole body first); a room ticket is single-use and
# short-lived, so a replayed one would be spent; a study room is named by the key its creator
# chooses, so a retry answers 409 with the room already there. A tus creation has no body and
# tus clients send no key: a creation whose answer was lost leaves an unused upload that
# expires (its reserved bytes with it).
UNKEYED = {
    "/v1/me/progress/{roadmap}/{topic}/note/attachments",
    "/v1/me/uploads",
    "/v1/orgs/{org}/rooms/{room}/tickets",
    "/v1/orgs/{org}/rooms",
}


def test_every_post_that_creates_accepts_an_idempotency_key() -> None:
    """A new creating route (201) that forgets dependencies=[IDEMPOTENT] fails here."""
    paths = create_app(Settings()).openapi()["paths"]
    creating = {
        path for path, ops in paths.items() if "201" in ops.get("post", {}).get("responses", {})
    }

    guarded = documented_as_taking_a_key(paths)

    assert guarded == (creating - UNKEYED) | NOT_REPEATABLE
    assert "/v1/roadmaps" in guarded


def test_the_middleware_guards_the_routes_the_openapi_document_shows_taking_a_key() -> None:
    app = create_app(Settings())

    guarded = {route.path_format for route in idempotent_routes(app.routes)}

    assert guarded == documented_as_taking_a_key(app.openapi()["paths"])


async def test_serving_a_keyed_post_does_not_build_the_openapi_document(
    app: FastAPI, ada: Browser
) -> None:
    await create(ada, "key-1", PLAN)
    retry = await create(ada, "key-1", PLAN)

    assert retry.headers["idempotency-replayed"] == "true"
    # The document weighs ~10 MB in memory: a worker builds it only to serve /openapi.json.
    assert app.openapi_schema is None


def documented_as_taking_a_key(paths: dict[str, Any]) -> set[str]:
    """The paths whose POST operation documents the Idempotency-Key header."""
    return {
        path
        for path, ops in paths.items()
        if any(p["name"] == "idempotency-key" for p in ops.get("post", {}).get("parameters", []))
    }


async def _claim_as_a_dead_request(
    ada: Browser, database: Database, clock: FrozenClock
) -> dict[str, str]:
    """A request that claimed key-1 and died before finishing (its process was killed)."""
    created = await ada.client.post(
        "/v1/me/api-keys", json={"name": "ci", "scopes": ["roadmaps:write"]}
    )
    caller = f"api-key:{created.json()['id']}"
    async with database.unit_of_work() as session:
        await claim(
            session,
            caller=caller,
            key="key-1",
            fingerprint=fingerprint("POST", "/v1/roadmaps", "", caller, JSON, orjson.dumps(PLAN)),
            now=clock.now(),
            ttl=LEASE,
        )
    return {"authorization": f"Bearer {created.json()['key']}"}


async def test_a_retry_after_a_dead_requests_lease_runs_the_request(
    ada: Browser, database: Database, clock: FrozenClock
) -> None:
    bearer = await _claim_as_a_dead_request(ada, database, clock)
    during = await create(ada, "key-1", PLAN, headers=bearer)
    clock.advance(seconds=LEASE.total_seconds() + 1)

    after = await create(ada, "key-1", PLAN, headers=bearer)
    again = await create(ada, "key-1", PLAN, headers=bearer)

    assert during.status_code == 409
    assert after.status_code == 201, after.text
    assert "idempotency-replayed" not in after.headers
    assert again.headers["idempotency-replayed"] == "true"
    assert await roadmap_count(ada) == 1


async def test_a_stored_response_keeps_the_full_ttl_not_the_lease(
    ada: Browser, database: Database, clock: FrozenClock
) -> None:
    await create(ada, "key-1", PLAN)

    async with database.sessionmaker() as session:
        record = (await session.execute(select(IdempotencyRecord))).scalar_one()
    assert record.status_code == 201
    assert record.expires_at == clock.now() + timedelta(hours=24)


async def test_a_failed_request_stores_nothing_and_keeps_nothing(
    ada: Browser, database: Database
) -> None:
    await create(ada, None, PLAN)

    failed = await create(ada, "key-1", {"slug": "plan", "title": "Again"})

    assert failed.status_code == 409
    assert await stored_keys(database) == 0
    assert await roadmap_count(ada) == 1
