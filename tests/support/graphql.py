"""Sending GraphQL documents through the real app, as a client would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.accounts import Browser


async def graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a document and read the GraphQL response: 200 for a query, even when fields failed
    (GraphQL's way); a failed mutation document answers with its first error's status."""
    response = await post_graphql(client, query, variables, headers)
    assert response.headers["content-type"] == "application/json", response.text
    body: dict[str, Any] = response.json()
    failed_mutation = body.get("data") is None and query.lstrip().startswith("mutation")
    assert response.status_code == 200 or failed_mutation, response.text
    return body


async def post_graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


async def as_learner(
    person: Browser, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A document sent by a signed-in browser: its cookie, and the CSRF token a POST needs."""
    return await graphql(person.client, query, variables, person.write_headers)


def problem_types(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["problem"]["type"] for error in body.get("errors", [])]


# --- graphql-transport-ws, as a client library speaks it -------------------------------------

PROTOCOL = "graphql-transport-ws"


def socket_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/graphql"


def cookie_header(person: Browser) -> dict[str, str]:
    """The browser's cookies, as it attaches them to a WebSocket handshake."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in person.client.cookies.items())}


async def receive(socket: ClientConnection, seconds: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        message: dict[str, Any] = json.loads(await socket.recv())
        return message


@asynccontextmanager
async def graphql_socket(
    http_url: str,
    *,
    headers: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
) -> AsyncIterator[ClientConnection]:
    """An acknowledged connection: connection_init (with `payload`), then connection_ack."""
    async with connect(
        socket_url(http_url), subprotocols=[Subprotocol(PROTOCOL)], additional_headers=headers
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        ack = await receive(socket)
        assert ack["type"] == "connection_ack", ack
        yield socket


async def subscribe(
    socket: ClientConnection, query: str, operation_id: str = "1", **variables: Any
) -> None:
    message = {"id": operation_id, "type": "subscribe", "payload": {"query": query}}
    if variables:
        message["payload"]["variables"] = variables
    await socket.send(json.dumps(message))


async def close_code(socket: ClientConnection, seconds: float = 15.0) -> int | None:
    """Read until the server closes the socket; the code it closed with."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await socket.recv()
    except ConnectionClosed:
        pass
    return socket.close_code
