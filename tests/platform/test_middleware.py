"""Request ids, the access log, and the body size limit, observed from the outside."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from starlette.middleware.cors import CORSMiddleware

from skilltree.platform.config import LogSettings
from skilltree.platform.http.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    CorsMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
    new_request_id,
)
from skilltree.platform.http.problems import install_problem_handlers
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.observability.logging import configure_logging

LIMIT = 1024


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, str | None]:
        return {"request_id": current_request_id()}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=LIMIT)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    configure_logging(LogSettings(level="INFO", format="json"))
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def log_lines(captured: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


async def test_a_request_id_is_made_and_returned(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things/1")

    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert response.json() == {"request_id": request_id}


def test_a_new_request_id_is_a_random_uuid4_in_hex() -> None:
    ids = [new_request_id() for _ in range(2000)]

    assert len(set(ids)) == len(ids)
    for request_id in ids:
        parsed = uuid.UUID(hex=request_id)
        assert parsed.hex == request_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # Every other bit varies, as uuid4's do.
    varying = 0
    for request_id in ids:
        varying |= int(request_id, 16) ^ int(ids[0], 16)
    assert varying == ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)


async def test_a_safe_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things/1", headers={"x-request-id": "edge-7f3a.42"})

    assert response.headers["x-request-id"] == "edge-7f3a.42"


@pytest.mark.parametrize("unsafe", ["x" * 129, "a b", "semi;colon", "<script>", "../etc"])
async def test_an_unsafe_incoming_request_id_is_replaced(
    client: httpx.AsyncClient, unsafe: str
) -> None:
    response = await client.get("/v1/things/1", headers={"x-request-id": unsafe})

    assert response.headers["x-request-id"] != unsafe
    assert len(response.headers["x-request-id"]) == 32


async def test_each_request_writes_one_access_log_line_with_the_route_template(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await client.get("/v1/things/42", headers={"x-request-id": "req-1"})

    await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
    lines = [line for line in log_lines(capsys.readouterr().out) if line["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-1"
    assert line["method"] == "GET"
    assert line["route"] == "/v1/things/{thing_id}"
    assert line["path"] == "/v1/things/42"
    assert line["status"] == 200
    assert line["bytes"] == len(response.content)
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info"


async def test_probes_are_logged_at_debug_level_only(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.get("/livez")

    await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
    assert [line for line in log_lines(capsys.readouterr().out) if line["event"] == "request"] == []


async def test_a_declared_oversized_body_is_refused_with_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/upload", content=b"x" * (LIMIT + 1))

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["limit"] == LIMIT


async def test_a_streamed_body_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    response = await client.post("/upload", content=chunks())

    assert response.status_code == 413


async def test_a_body_within_the_limit_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/upload", content=b"x" * LIMIT)

    assert response.json() == {"size": LIMIT}


def _cors_app(middleware: type[CORSMiddleware], vary: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/thing")
    async def thing() -> Response:
        response = Response(b"{}", media_type="application/json")
        for value in vary:
            response.headers.append("vary", value)
        return response

    app.add_middleware(
        middleware,
        allow_origins=["https://app.example"],
        allow_credentials=True,
        allow_methods=["GET"],
        expose_headers=["x-request-id"],
    )
    return app


@pytest.mark.parametrize("vary", [[], ["Accept-Encoding"], ["Accept-Encoding", "Cookie"]])
@pytest.mark.parametrize("origin", [None, "https://app.example", "https://elsewhere.example"])
async def test_cors_answers_exactly_as_starlettes_cors_middleware(
    vary: list[str], origin: str | None
) -> None:
    headers = {} if origin is None else {"origin": origin}
    answers = []
    for middleware in (CORSMiddleware, CorsMiddleware):
        transport = httpx.ASGITransport(app=_cors_app(middleware, vary))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/thing", headers=headers)
        answers.append((response.status_code, response.headers.raw, response.content))

    assert answers[0] == answers[1]
