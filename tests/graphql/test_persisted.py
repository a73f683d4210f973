"""Persisted queries: a document named by its SHA-256, learned from clients (the automatic
convention) or, in registered-only mode, taken only from the registry file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import GraphQLSettings, Settings
from skilltree.platform.db import Database

TOTAL = "{ roadmaps { total } }"
OTHER = "{ roadmaps { items { slug } } }"


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def named(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}


async def send(
    http: httpx.AsyncClient, extensions: dict[str, Any] | None, query: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": extensions} if extensions else {}
    if query is not None:
        body["query"] = query
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def code_and_type(body: dict[str, Any]) -> tuple[str, str]:
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions["problem"]["type"]


async def test_an_unknown_hash_asks_for_the_document(client: httpx.AsyncClient) -> None:
    body = await send(client, named(TOTAL))

    assert body["data"] is None
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    assert code_and_type(body) == (
        "PERSISTED_QUERY_NOT_FOUND",
        "/problems/persisted-query-not-found",
    )


async def test_a_document_sent_with_its_hash_then_runs_by_hash_alone(
    client: httpx.AsyncClient,
) -> None:
    first = await send(client, named(TOTAL), TOTAL)
    by_hash = await send(client, named(TOTAL))
    over_get = await client.get("/graphql", params={"extensions": json.dumps(named(TOTAL))})

    assert first == by_hash == {"data": {"roadmaps": {"total": 0}}}
    assert over_get.json() == first


async def test_a_hash_that_is_not_the_documents_is_refused_and_not_remembered(
    client: httpx.AsyncClient,
) -> None:
    refused = await send(client, named(TOTAL), OTHER)
    afterwards = await send(client, named(TOTAL))

    assert code_and_type(refused) == (
        "PERSISTED_QUERY_MISMATCH",
        "/problems/persisted-query-mismatch",
    )
    assert code_and_type(afterwards)[0] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_malformed_persisted_query_is_refused(client: httpx.AsyncClient) -> None:
    body = await send(client, {"persistedQuery": {"version": 2, "sha256Hash": "abc"}}, TOTAL)

    assert code_and_type(body)[1] == "/problems/invalid-persisted-query"


@pytest.fixture
async def registered_only(
    settings: Settings, database: Database, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    registry = tmp_path / "persisted.json"
    registry.write_text(json.dumps({sha256(TOTAL): TOTAL}))
    strict = settings.model_copy(
        update={"graphql": GraphQLSettings(persisted_only=True, persisted_queries_file=registry)}
    )
    application = create_app(strict, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_registered_only_runs_the_registry_and_nothing_else(
    registered_only: httpx.AsyncClient,
) -> None:
    registered = await send(registered_only, named(TOTAL))
    plain = await send(registered_only, None, TOTAL)
    unregistered = await send(registered_only, named(OTHER), OTHER)

    assert registered == {"data": {"roadmaps": {"total": 0}}}
    assert code_and_type(plain) == (
        "PERSISTED_QUERY_REQUIRED",
        "/problems/persisted-query-required",
    )
    assert code_and_type(unregistered)[0] == "PERSISTED_QUERY_NOT_FOUND"


def test_a_registry_entry_under_a_wrong_hash_stops_the_start(
    settings: Settings, tmp_path: Path
) -> None:
    registry = tmp_path / "persisted.json"
    registry.write_text(json.dumps({sha256(OTHER): TOTAL}))
    broken = settings.model_copy(
        update={"graphql": GraphQLSettings(persisted_queries_file=registry)}
    )

    with pytest.raises(ValueError, match="not the SHA-256 of its document"):
        create_app(broken)
