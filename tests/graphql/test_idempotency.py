"""Idempotency-Key on GraphQL mutations: the REST API's semantics (decisions 0014, 0015) —
a retry replays the first answer, the key belongs to one credential, a replay never skips
authorisation, and a failed document releases its key — and the REST write budget."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RateLimitSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import Browser, bearer_headers
from tests.support.graphql import post_graphql
from tests.support.progress import by_slug, mark

UNDO = 'mutation { undo(roadmap: "web") { topic toStatus } }'


async def status_of(learner: Browser, topic: str) -> str:
    progress = (await learner.client.get("/v1/me/progress/web")).json()
    return str(by_slug(progress["topics"])[topic]["status"])


def with_key(person: Browser, key: str) -> dict[str, str]:
    return {**person.write_headers, "idempotency-key": key}


async def test_a_retried_mutation_acts_once_and_replays_the_first_answer(ada: Browser) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "done")

    first = await post_graphql(ada.client, UNDO, headers=with_key(ada, "undo-1"))
    retried = await post_graphql(ada.client, UNDO, headers=with_key(ada, "undo-1"))

    assert first.status_code == retried.status_code == 200
    assert retried.json() == first.json()
    assert retried.headers["idempotency-replayed"] == "true"
    assert await status_of(ada, "etags") == "in_progress"  # one undo, not two


async def test_the_same_key_from_another_credential_is_another_request(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "done")
    token = await bearer_headers(ada)

    await post_graphql(ada.client, UNDO, headers=with_key(ada, "shared"))
    other = await post_graphql(client, UNDO, headers={**token, "idempotency-key": "shared"})

    assert "idempotency-replayed" not in other.headers
    assert await status_of(ada, "etags") == "todo"  # both undid


async def test_a_key_reused_for_another_document_is_refused(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    await post_graphql(ada.client, UNDO, headers=with_key(ada, "k"))

    reused = await post_graphql(
        ada.client,
        'mutation { setStatus(roadmap: "web", topic: "etags", status: "done") { status } }',
        headers=with_key(ada, "k"),
    )

    assert reused.status_code == 422
    assert reused.json()["type"] == "/problems/idempotency-key-reused"


async def test_a_failed_document_releases_its_key(ada: Browser) -> None:
    nothing = await post_graphql(ada.client, UNDO, headers=with_key(ada, "early"))
    await mark(ada, "etags", "done")
    again = await post_graphql(ada.client, UNDO, headers=with_key(ada, "early"))

    assert nothing.status_code == 409
    assert nothing.json()["errors"][0]["extensions"]["problem"]["type"] == (
        "/problems/nothing-to-undo"
    )
    assert again.status_code == 200, again.text
    assert "idempotency-replayed" not in again.headers
    assert await status_of(ada, "etags") == "todo"


async def test_a_replay_after_the_key_lost_its_scope_is_refused(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    created = await ada.client.post(
        "/v1/me/api-keys",
        json={"name": "sync", "scopes": ["progress:write", "progress:read"]},
        headers=ada.write_headers,
    )
    api_key = created.json()
    headers = {"authorization": f"Bearer {api_key['key']}", "idempotency-key": "sync-1"}
    await mark(ada, "etags", "done")
    first = await post_graphql(client, UNDO, headers=headers)
    revoked = await ada.client.delete(f"/v1/me/api-keys/{api_key['id']}", headers=ada.write_headers)
    assert revoked.status_code == 204, revoked.text

    replay = await post_graphql(client, UNDO, headers=headers)

    assert first.status_code == 200, first.text
    assert replay.status_code == 401
    assert "idempotency-replayed" not in replay.headers


@pytest.fixture
async def write_budget_of_three(
    settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={"rate_limit": RateLimitSettings(write="3/hour", read="100/hour")}
    )
    application = create_app(limited, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def test_mutations_spend_the_rest_write_budget_of_the_credential(
    write_budget_of_three: FastAPI, ada: Browser
) -> None:
    transport = httpx.ASGITransport(app=write_budget_of_three)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        http.cookies = ada.client.cookies
        rest = await http.put(
            "/v1/me/progress/web/etags", json={"status": "done"}, headers=ada.write_headers
        )
        mutations = [
            (await post_graphql(http, UNDO, headers=ada.write_headers)).status_code
            for _ in range(2)
        ]
        over = await http.put(
            "/v1/me/progress/web/etags", json={"status": "done"}, headers=ada.write_headers
        )

    assert rest.status_code == 200
    assert mutations == [200, 409]  # the second had nothing left to undo, and still counted
    assert over.status_code == 429
    assert over.headers["content-type"] == "application/problem+json"
