"""`GET /livez` answered before the middleware stack (platform/http/probes.py) is the same
answer, access-log line and metrics as the routed probe, and is never throttled nor refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from skilltree.app import create_app
from skilltree.platform.config import HttpSettings, LogSettings, RateLimitSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.http.admission import AdmissionMiddleware
from skilltree.platform.http.front_door import FrontDoorApp
from skilltree.platform.http.probes import LivenessMiddleware
from skilltree.platform.observability.logging import configure_logging
from tests.support.fast_path import access_lines

LIVEZ = "/livez"
Layer = TypeVar("Layer")


@asynccontextmanager
async def serving(app: FastAPI, base_url: str = "http://test") -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def routed(app: FastAPI) -> FastAPI:
    """The app with the probe left to its route (the stack is built at the first request)."""
    assert isinstance(app, FrontDoorApp)
    app.front_middleware = [m for m in app.front_middleware if m.cls is not LivenessMiddleware]
    return app


def layer_of(app: FastAPI, kind: type[Layer]) -> Layer:
    """The app's layer of this kind: in front of the application, or in its own stack."""
    assert isinstance(app, FrontDoorApp)
    for layer in (app.front_stack, app.middleware_stack):
        while layer is not None and not isinstance(layer, kind):
            layer = getattr(layer, "app", None)
        if layer is not None:
            return layer
    raise AssertionError(f"the application has no {kind.__name__}")


def answer(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers in their order; a generated request id left out."""
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if not (name == "x-request-id" and value != "given-id")
    ]
    return response.status_code, response.content, headers


def probes_counted() -> float:
    labels = {"method": "GET", "route": LIVEZ, "status": "200"}
    return REGISTRY.get_sample_value("skilltree_http_requests_total", labels) or 0.0


CASES: list[dict[str, str]] = [
    {},
    {"x-request-id": "given-id"},
    {"x-request-id": "not a safe id"},
    {"accept-encoding": "br, gzip"},
    {"user-agent": "kube-probe/1.30", "accept": "*/*"},
]


@pytest.mark.parametrize("base_url", ["http://test", "https://test"])
async def test_the_probe_is_answered_as_the_route_answers_it(
    settings: Settings, database: Database, capsys: pytest.CaptureFixture[str], base_url: str
) -> None:
    configure_logging(LogSettings(level="DEBUG", format="json"))
    early_app = create_app(settings, database=database)
    routed_app = routed(create_app(settings, database=database))
    async with serving(early_app, base_url) as early, serving(routed_app, base_url) as late:
        for client in (early, late):
            await client.get(LIVEZ)  # each app's stack built (and the routed answer kept)
        await asyncio.sleep(0)
        capsys.readouterr()
        counted = probes_counted()
        by_probe = [await early.get(LIVEZ, headers=headers) for headers in CASES]
        await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
        probe_log = capsys.readouterr().out
        counted_by_probe = probes_counted() - counted
        by_route = [await late.get(LIVEZ, headers=headers) for headers in CASES]
        await asyncio.sleep(0)
        route_log = capsys.readouterr().out
        counted_by_route = probes_counted() - counted - counted_by_probe
        answered = layer_of(early_app, LivenessMiddleware).answered

    assert [answer(r) for r in by_probe] == [answer(r) for r in by_route]
    assert answered == len(CASES)  # the first went to the route, which set what is kept
    assert by_probe[0].json() == {"status": "ok"}
    assert by_probe[0].headers["cache-control"] == "no-store"
    assert by_probe[1].headers["x-request-id"] == "given-id"
    assert by_probe[2].headers["x-request-id"] != "not a safe id"
    assert ("strict-transport-security" in by_probe[0].headers) == base_url.startswith("https")
    assert access_lines(probe_log) == access_lines(route_log)
    assert len(access_lines(probe_log)) == len(CASES)
    assert all(("level", "debug") in line for line in access_lines(probe_log))
    assert counted_by_probe == counted_by_route == len(CASES)


async def test_what_the_route_answers_differently_goes_down_the_stack(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings, database=database)
    async with serving(app) as client:
        cross_origin = await client.get(LIVEZ, headers={"origin": "http://test"})
        head = await client.head(LIVEZ)
        with_query = await client.get(LIVEZ + "?verbose=1")
        answered = layer_of(app, LivenessMiddleware).answered

    assert answered == 0
    assert cross_origin.headers["access-control-allow-origin"] == "http://test"
    assert head.status_code == 200  # the route's GET, without the body
    assert head.content == b""
    assert with_query.json() == {"status": "ok"}


async def test_the_probe_is_answered_with_the_rate_limit_exhausted(
    settings: Settings, database: Database
) -> None:
    tight = settings.model_copy(update={"rate_limit": RateLimitSettings(read="2/minute")})
    app = create_app(tight, database=database)
    async with serving(app) as client:
        reads = [await client.get("/v1/roadmaps") for _ in range(3)]
        probes = [await client.get(LIVEZ) for _ in range(3)]

    assert [r.status_code for r in reads] == [200, 200, 429]
    assert [r.status_code for r in probes] == [200, 200, 200]
    assert "ratelimit" not in probes[0].headers


async def test_the_probe_is_answered_under_overload(settings: Settings, database: Database) -> None:
    full = settings.model_copy(update={"http": HttpSettings(max_in_flight=1, max_waiting=0)})
    app = create_app(full, database=database)
    async with serving(app) as client:
        await client.get(LIVEZ)  # the stack built
        slots = layer_of(app, AdmissionMiddleware).slots
        assert slots.try_take()  # as a request in flight would
        try:
            refused = await client.get("/v1/roadmaps")
            probe = await client.get(LIVEZ)
        finally:
            slots.release()

    assert refused.status_code == 503
    assert probe.status_code == 200


async def test_a_probe_the_stack_would_compress_goes_to_the_route(
    settings: Settings, database: Database
) -> None:
    compress_all = settings.model_copy(update={"http": HttpSettings(compression_min_bytes=0)})
    app = create_app(compress_all, database=database)
    async with serving(app) as client:
        first = await client.get(LIVEZ, headers={"accept-encoding": "gzip"})
        plain = [await client.get(LIVEZ, headers={"accept-encoding": "identity"}) for _ in "ab"]
        coded = await client.get(LIVEZ, headers={"accept-encoding": "gzip"})
        answered = layer_of(app, LivenessMiddleware).answered

    assert first.headers["content-encoding"] == "gzip"
    assert coded.headers["content-encoding"] == "gzip"
    assert [r.json() for r in (first, *plain, coded)] == [{"status": "ok"}] * 4
    assert all("content-encoding" not in r.headers for r in plain)
    assert answered == 0  # nothing uncompressed kept, or compressed by the stack


async def test_an_answer_sent_in_parts_is_not_kept() -> None:
    async def in_parts(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"status":', "more_body": True})
        await send({"type": "http.response.body", "body": b'"ok"}', "more_body": False})

    probes = LivenessMiddleware(in_parts, access_log=False, minimum_size=1024)
    transport = httpx.ASGITransport(app=probes)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = [await client.get(LIVEZ) for _ in range(2)]

    assert [r.json() for r in answers] == [{"status": "ok"}] * 2
    assert probes.answered == 0
