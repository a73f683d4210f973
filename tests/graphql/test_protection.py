"""What guards /graphql: the REST API's authentication and CSRF defence, document limits,
introspection off in production, problem types in errors, and the per-credential rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import AppSettings, GraphQLSettings, RateLimitSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import Browser, bearer_headers
from tests.support.graphql import as_learner, graphql, problem_types
from tests.support.progress import mark

PROGRESS = '{ me { progress(roadmap: "web") { summary { done } } } }'


async def test_a_cookie_post_without_the_csrf_token_is_refused(ada: Browser) -> None:
    body = await graphql(ada.client, PROGRESS)

    assert body["data"] is None
    assert problem_types(body) == ["/problems/csrf-rejected"]


async def test_a_cookie_post_from_another_site_is_refused_even_with_the_token(
    ada: Browser,
) -> None:
    headers = {**ada.write_headers, "origin": "https://evil.example"}

    body = await graphql(ada.client, PROGRESS, headers=headers)

    assert problem_types(body) == ["/problems/csrf-rejected"]


async def test_a_bearer_token_reads_without_a_cookie(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    await mark(ada, "etags", "done")

    body = await graphql(client, PROGRESS, headers=await bearer_headers(ada))

    assert body == {"data": {"me": {"progress": {"summary": {"done": 1}}}}}


async def test_an_api_key_reads_only_what_its_scopes_allow(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    created = await ada.client.post(
        "/v1/me/api-keys",
        json={"name": "sync", "scopes": ["roadmaps:write"]},
        headers=ada.write_headers,
    )
    key = {"authorization": f"Bearer {created.json()['key']}"}

    refused = await graphql(client, PROGRESS, headers=key)
    allowed = await graphql(client, "{ me { organisations { slug } } }", headers=key)

    assert problem_types(refused) == ["/problems/insufficient-scope"]
    assert refused["errors"][0]["extensions"]["problem"]["scope"] == "progress:read"
    assert allowed == {"data": {"me": {"organisations": []}}}


async def test_a_wrong_token_is_refused_even_for_public_data(client: httpx.AsyncClient) -> None:
    body = await graphql(
        client, "{ roadmaps { total } }", headers={"authorization": "Bearer not-a-token"}
    )

    assert problem_types(body) == ["/problems/not-authenticated"]


async def test_anonymous_callers_are_told_to_authenticate(client: httpx.AsyncClient) -> None:
    body = await graphql(client, PROGRESS)

    assert body["errors"][0]["extensions"]["problem"]["status"] == 401
    assert body["errors"][0]["path"] == ["me"]


async def test_bad_arguments_are_the_rest_apis_validation_problem(ada: Browser) -> None:
    body = await as_learner(
        ada, 'mutation { setStatus(roadmap: "web", topic: "etags", status: "finished") { status } }'
    )

    problem = body["errors"][0]["extensions"]["problem"]
    assert (problem["status"], problem["type"]) == (422, "/problems/validation-error")
    assert problem["errors"][0]["field"] == "status"


async def test_a_document_nested_too_deep_is_refused_before_it_runs(
    client: httpx.AsyncClient,
) -> None:
    nested = "{ slug " + "children { slug " * 12 + "}" * 12 + " }"
    body = await graphql(client, f'{{ roadmap(slug: "web") {{ tree {nested} }} }}')

    assert body["data"] is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["problem"]["status"] == 400


async def test_too_many_aliases_are_refused(client: httpx.AsyncClient) -> None:
    aliases = " ".join(f"a{n}: roadmaps {{ total }}" for n in range(16))

    body = await graphql(client, f"{{ {aliases} }}")

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["problem"]["type"] == "/problems/invalid-query"


async def introspect(settings: Settings, database: Database, clock: FrozenClock) -> dict[str, Any]:
    application = create_app(settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await graphql(http, "{ __schema { queryType { name } } }")


async def test_introspection_is_off_in_production_unless_enabled(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    production = settings.model_copy(
        update={"app": AppSettings(env="production", secret_key="a-real-secret-" * 4)}
    )
    enabled = production.model_copy(update={"graphql": GraphQLSettings(introspection=True)})

    refused = await introspect(production, database, clock)
    answered = await introspect(enabled, database, clock)
    testing = await introspect(settings, database, clock)

    assert "introspection" in refused["errors"][0]["message"]
    assert answered == testing == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_too_many_tokens_are_refused_with_the_problem(client: httpx.AsyncClient) -> None:
    fields = " ".join(["total"] * 2100)

    body = await graphql(client, f"{{ roadmaps {{ {fields} }} }}")

    assert body["data"] is None
    assert problem_types(body) == ["/problems/invalid-query"]


async def test_an_unknown_field_is_refused_with_the_problem(client: httpx.AsyncClient) -> None:
    body = await graphql(client, "{ roadmaps { nothingHere } }")

    assert problem_types(body) == ["/problems/invalid-query"]
    assert body["errors"][0]["extensions"]["problem"]["status"] == 400


@pytest.mark.parametrize(
    ("method", "request_options"),
    [
        ("POST", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("POST", {"json": {"variables": {}}}),
        ("GET", {"params": {"query": 'mutation { undo(roadmap: "web") { topic } }'}}),
        ("POST", {"json": {"query": "subscription { progressEvents { topic } }"}}),
    ],
    ids=["json-that-does-not-parse", "no-query", "mutation-over-get", "subscription-over-post"],
)
async def test_requests_refused_before_any_document_runs_carry_the_problem(
    client: httpx.AsyncClient, method: str, request_options: dict[str, Any]
) -> None:
    response = await client.request(method, "/graphql", **request_options)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    problem = body["errors"][0]["extensions"]["problem"]
    assert (problem["type"], problem["status"]) == ("/problems/invalid-query", 400)
    assert problem["detail"] == body["errors"][0]["message"]


@pytest.fixture
async def limited_app(
    settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={"rate_limit": RateLimitSettings(write="3/hour", read="3/hour")}
    )
    application = create_app(limited, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def test_graphql_requests_count_against_the_rest_rate_limit(limited_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        statuses = [
            (await http.post("/graphql", json={"query": "{ roadmaps { total } }"})).status_code
            for _ in range(4)
        ]
        refused = await http.post("/graphql", json={"query": "{ roadmaps { total } }"})

    assert statuses == [200, 200, 200, 429]
    assert refused.headers["content-type"] == "application/problem+json"
