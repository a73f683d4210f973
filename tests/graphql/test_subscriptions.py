"""`subscription { progressEvents }` with a real WebSocket client against a real server on
loopback, speaking graphql-transport-ws: on SQLite alone, and on PostgreSQL with Redis (the
fan-out then goes through Redis, as it does between instances)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from tests.support.accounts import Browser, bearer_headers
from tests.support.graphql import (
    PROTOCOL,
    close_code,
    cookie_header,
    graphql_socket,
    receive,
    socket_url,
    subscribe,
)
from tests.support.live import (
    ALLOWED_ORIGIN,
    LiveServer,
    base_environment,
    live_database,
    person,
    running_servers,
)
from tests.support.progress import WEB, import_roadmap, mark
from tests.support.redis import REDIS_URL, isolated_prefix

CHANGES = """subscription Changes($roadmap: String) {
  progressEvents(roadmap: $roadmap) { roadmap topic title fromStatus toStatus progressEventId }
}"""
REALTIME = {"credential_check_seconds": 0.5}


@asynccontextmanager
async def redis_for(backend: str) -> AsyncIterator[dict[str, str]]:
    if backend == "sqlite":
        yield {}
        return
    async with isolated_prefix() as prefix:
        yield {"SKILLTREE_REDIS_URL": REDIS_URL, "SKILLTREE_REDIS_KEY_PREFIX": prefix}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("graphql-ws")
    async with redis_for(request.param) as redis:
        env = base_environment(workdir, **REALTIME) | redis
        async with live_database(request.param, env) as on_database:
            with running_servers(on_database, workdir) as servers:
                first = await person(servers[0], "Owner")
                await import_roadmap(first, WEB, visibility="public")
                await first.client.aclose()
                yield servers[0]


@pytest.fixture
async def ada(server: LiveServer) -> AsyncIterator[Browser]:
    found = await person(server, "Ada")
    yield found
    await found.client.aclose()


def browser_headers(person: Browser, origin: str = ALLOWED_ORIGIN) -> dict[str, str]:
    return {**cookie_header(person), "Origin": origin}


async def open_subscriptions(server: LiveServer) -> float:
    """What /metrics says of the subscriptions this instance holds."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    found = re.search(r"^skilltree_graphql_subscriptions(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert found is not None, "the gauge is exposed"
    return float(found.group(1))


async def until_open(server: LiveServer, wanted: Callable[[float], bool]) -> None:
    """Poll /metrics until the count of open subscriptions is as wanted."""
    async with asyncio.timeout(15):
        while True:
            if wanted(await open_subscriptions(server)):
                return
            await asyncio.sleep(0.05)


async def until_subscribed(server: LiveServer, count: float = 1.0) -> None:
    await until_open(server, lambda open_now: open_now >= count)


async def test_a_status_change_made_over_rest_arrives_on_the_subscription(
    server: LiveServer, ada: Browser
) -> None:
    async with graphql_socket(server.url, headers=browser_headers(ada)) as socket:
        await subscribe(socket, CHANGES, roadmap="web")
        await until_subscribed(server)
        changed = await mark(ada, "etags", "done")
        assert changed.status_code == 200, changed.text

        message = await receive(socket)
        await socket.send(json.dumps({"id": "1", "type": "complete"}))

    assert message["type"] == "next"
    assert message["id"] == "1"
    change = message["payload"]["data"]["progressEvents"]
    assert change["roadmap"] == "web"
    assert (change["topic"], change["title"]) == ("etags", "ETags")
    assert (change["fromStatus"], change["toStatus"]) == (None, "done")
    assert isinstance(change["progressEventId"], int)


async def test_a_bearer_token_in_connection_init_signs_the_socket_in(
    server: LiveServer, ada: Browser
) -> None:
    token = await bearer_headers(ada)
    async with graphql_socket(server.url, payload=token) as socket:
        await subscribe(socket, CHANGES)
        await until_subscribed(server)
        await mark(ada, "status-codes", "in_progress")

        message = await receive(socket)

    assert message["payload"]["data"]["progressEvents"]["toStatus"] == "in_progress"


async def test_only_the_callers_own_changes_arrive(server: LiveServer, ada: Browser) -> None:
    grace = await person(server, "Grace")
    async with graphql_socket(server.url, headers=browser_headers(ada)) as socket:
        await subscribe(socket, CHANGES)
        await until_subscribed(server)
        await mark(grace, "etags", "done")  # Grace's change: not for Ada
        await mark(ada, "cache-control", "skipped")

        message = await receive(socket)

    await grace.client.aclose()
    assert message["payload"]["data"]["progressEvents"]["topic"] == "cache-control"


async def test_without_credentials_the_socket_is_closed_with_4401(server: LiveServer) -> None:
    async with connect(socket_url(server.url), subprotocols=[Subprotocol(PROTOCOL)]) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))

        assert await close_code(socket) == 4401


async def test_a_wrong_token_is_closed_with_4401(server: LiveServer) -> None:
    async with connect(socket_url(server.url), subprotocols=[Subprotocol(PROTOCOL)]) as socket:
        payload = {"authorization": "Bearer not-a-token"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))

        assert await close_code(socket) == 4401


async def test_a_handshake_from_a_foreign_origin_is_refused(
    server: LiveServer, ada: Browser
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            socket_url(server.url),
            subprotocols=[Subprotocol(PROTOCOL)],
            additional_headers=browser_headers(ada, origin="https://evil.example"),
        )

    assert refused.value.response.status_code == 403


async def test_signing_out_ends_the_subscription_and_closes_the_socket(
    server: LiveServer, ada: Browser
) -> None:
    async with graphql_socket(server.url, headers=browser_headers(ada)) as socket:
        await subscribe(socket, CHANGES)
        await until_subscribed(server)
        signed_out = await ada.client.post("/v1/auth/logout", headers=ada.write_headers)
        assert signed_out.status_code == 204, signed_out.text

        ended = await receive(socket)
        completed = await receive(socket)
        code = await close_code(socket)

    problem = ended["payload"]["errors"][0]["extensions"]["problem"]
    assert (problem["status"], problem["type"]) == (401, "/problems/not-authenticated")
    assert completed == {"id": "1", "type": "complete"}
    assert code == 4401


async def test_a_disconnect_releases_the_subscriber(server: LiveServer, ada: Browser) -> None:
    before = await open_subscriptions(server)
    async with graphql_socket(server.url, headers=browser_headers(ada)) as socket:
        await subscribe(socket, CHANGES)
        await until_subscribed(server, before + 1)
    # The client went away without completing: the server notices and lets go.

    await until_open(server, lambda open_now: open_now == before)


async def test_an_api_key_without_progress_read_is_refused_with_its_problem(
    server: LiveServer, ada: Browser
) -> None:
    created = await ada.client.post(
        "/v1/me/api-keys",
        json={"name": "sync", "scopes": ["roadmaps:write"]},
        headers=ada.write_headers,
    )
    key = {"authorization": f"Bearer {created.json()['key']}"}
    async with graphql_socket(server.url, payload=key) as socket:
        await subscribe(socket, CHANGES)

        refused = await receive(socket)

    assert refused["type"] == "error"
    problem = refused["payload"][0]["extensions"]["problem"]
    assert (problem["type"], problem["scope"]) == ("/problems/insufficient-scope", "progress:read")


async def test_queries_are_sent_over_http_not_the_socket(server: LiveServer, ada: Browser) -> None:
    async with graphql_socket(server.url, headers=browser_headers(ada)) as socket:
        await subscribe(socket, "{ roadmaps { total } }")

        refused: dict[str, Any] = await receive(socket)

    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["problem"]["type"] == "/problems/subscriptions-only"


async def test_a_subscription_named_by_an_unknown_hash_is_asked_for_its_document(
    server: LiveServer, ada: Browser
) -> None:
    named = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(b"?").hexdigest()}}
    async with graphql_socket(server.url, headers=browser_headers(ada)) as socket:
        await socket.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"extensions": named}})
        )

        refused = await receive(socket)

    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
