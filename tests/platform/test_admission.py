"""Admission control: beyond the requests a worker runs at once (and a short line), a request is
answered 503 with Retry-After at once; probes, /metrics and live streams are never refused, and
every slot comes back however its request ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message

from skilltree.platform.config import HttpSettings, LogSettings, Settings
from skilltree.platform.http.admission import SHED_ROUTE, AdmissionMiddleware, Slots
from skilltree.platform.http.middleware import (
    AccessLogMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
)
from skilltree.platform.http.problems import install_problem_handlers
from skilltree.platform.http.security_headers import SecurityHeadersMiddleware
from skilltree.platform.observability.logging import configure_logging
from skilltree.platform.observability.metrics import HTTP_IN_FLIGHT, HTTP_REQUESTS, HTTP_SHED
from skilltree.realtime.eventstream import EventStreamResponse
from skilltree.realtime.service import Frame
from tests.support.live import free_port

ORIGIN = "http://allowed.test"


def gauge(state: str) -> float:
    value: float = HTTP_IN_FLIGHT.labels(state)._value.get()
    return value


def shed(reason: str) -> float:
    value: float = HTTP_SHED.labels(reason)._value.get()
    return value


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never saw {what}")


class Slow:
    """A route's work, held until the test lets it finish."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0

    async def work(self) -> None:
        self.started += 1
        await self.gate.wait()


def build_app(slow: Slow, **admission: Any) -> tuple[FastAPI, AdmissionMiddleware]:
    """A small app with skilltree's order at the front: request id, security headers, then
    admission control, then the access log and the last-resort 500."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/slow")
    async def slow_route() -> dict[str, bool]:
        await slow.work()
        return {"done": True}

    @app.get("/v1/fails")
    async def failing_route() -> StreamingResponse:
        async def chunks() -> AsyncGenerator[bytes]:
            yield b"the start of an answer"
            await slow.work()
            raise RuntimeError("a bug, too late for a 500")

        return StreamingResponse(chunks())

    @app.post("/v1/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> dict[str, str]:
        return {"metrics": "here"}

    @app.get("/v1/things/{thing}/stream", response_class=EventStreamResponse)
    async def stream(thing: str) -> EventStreamResponse:
        async def frames() -> AsyncGenerator[Frame]:
            yield Frame(event="hello", data={"thing": thing})
            await slow.gate.wait()
            yield Frame(event="bye", data={})

        return EventStreamResponse(frames())

    settings = HttpSettings(**({"max_in_flight": 2, "max_waiting": 0} | admission))
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(AccessLogMiddleware)
    cors = {"allow_origins": [ORIGIN], "expose_headers": ["retry-after", "x-request-id"]}
    app.add_middleware(AdmissionMiddleware, settings=settings, stream_routes=app.routes, cors=cors)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app, _admission_of(app)


def _admission_of(app: FastAPI) -> AdmissionMiddleware:
    app.middleware_stack = app.build_middleware_stack()
    layer: ASGIApp | None = app.middleware_stack
    while layer is not None and not isinstance(layer, AdmissionMiddleware):
        layer = getattr(layer, "app", None)
    assert layer is not None
    return layer


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_request_beyond_the_bound_is_refused_at_once_and_the_admitted_complete() -> None:
    slow = Slow()
    app, admission = build_app(slow)
    admitted_before = gauge("admitted")
    shed_before = shed("line_full")
    logged_before = HTTP_REQUESTS.labels("GET", SHED_ROUTE, "503")._value.get()
    async with client_of(app) as client:
        running = [asyncio.create_task(client.get("/v1/slow")) for _ in range(2)]
        await until(lambda: slow.started == 2, "two requests running")
        assert gauge("admitted") == admitted_before + 2

        started = time.monotonic()
        refused = await client.get("/v1/slow", headers={"x-request-id": "turned-away.1"})
        refused_after = time.monotonic() - started

        slow.gate.set()
        answers = await asyncio.gather(*running)

    assert refused_after < 0.5
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/overloaded"
    assert refused.json()["retry_after"] == 1
    # The request id and the security headers are added outside admission control.
    assert refused.headers["x-request-id"] == "turned-away.1"
    assert refused.json()["request_id"] == "turned-away.1"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert slow.started == 2  # the refused request ran nothing
    assert [answer.status_code for answer in answers] == [200, 200]
    assert admission.slots.held == 0
    assert gauge("admitted") == admitted_before
    assert shed("line_full") == shed_before + 1
    # Counted in the RED metrics like any answer, under a route of its own.
    assert HTTP_REQUESTS.labels("GET", SHED_ROUTE, "503")._value.get() == logged_before + 1


async def test_shedding_is_logged_once_a_second_with_the_number_shed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=1)
    async with client_of(app) as client:
        running = asyncio.create_task(client.get("/v1/slow"))
        await until(lambda: slow.started == 1, "a request running")
        capsys.readouterr()
        first = await client.get("/v1/slow", headers={"x-request-id": "first-shed"})
        for _ in range(3):
            assert (await client.get("/v1/slow")).status_code == 503
        admission.shed_logged_at -= 1  # a second later
        await client.get("/v1/slow", headers={"x-request-id": "fifth-shed"})
        slow.gate.set()
        await running
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]

    shed_lines = [line for line in lines if line["event"] == "requests shed"]
    assert first.status_code == 503
    assert [(line["shed"], line["request_id"]) for line in shed_lines] == [
        (1, "first-shed"),
        (4, "fifth-shed"),
    ]
    assert shed_lines[0]["level"] == "warning"
    assert shed_lines[0]["path"] == "/v1/slow"
    assert shed_lines[0]["over_seconds"] == 0
    assert shed_lines[1]["over_seconds"] < 1  # from the second refusal, the first not logged


async def test_a_browser_on_an_allowed_origin_may_read_the_refusal() -> None:
    slow = Slow()
    app, _ = build_app(slow, max_in_flight=1)
    async with client_of(app) as client:
        running = asyncio.create_task(client.get("/v1/slow"))
        await until(lambda: slow.started == 1, "a request running")
        refused = await client.get("/v1/slow", headers={"origin": ORIGIN})
        slow.gate.set()
        await running

    assert refused.status_code == 503
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in refused.headers["access-control-expose-headers"]


async def test_probes_metrics_and_streams_are_never_refused_nor_counted() -> None:
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=1)
    async with client_of(app) as client:
        running = asyncio.create_task(client.get("/v1/slow"))
        await until(lambda: slow.started == 1, "a request running")
        livez = await client.get("/livez")
        metrics = await client.get("/metrics")
        stream = asyncio.create_task(client.get("/v1/things/t1/stream"))
        await asyncio.sleep(0.05)
        held_while_streaming = admission.slots.held
        slow.gate.set()
        streamed, _ = await asyncio.gather(stream, running)

    assert livez.status_code == 200
    assert metrics.status_code == 200
    assert streamed.status_code == 200
    assert "event: hello" in streamed.text
    assert "event: bye" in streamed.text
    assert held_while_streaming == 1  # only the slow request; the stream holds no slot
    assert admission.slots.held == 0


async def test_a_short_line_admits_in_arrival_order_then_refuses_at_once() -> None:
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=1, max_waiting=2, max_wait_seconds=5)
    async with client_of(app) as client:
        first = asyncio.create_task(client.get("/v1/slow"))
        await until(lambda: slow.started == 1, "a request running")
        waiting = []
        for _ in range(2):
            waiting.append(asyncio.create_task(client.get("/v1/slow")))
            await until(lambda: admission.slots.waiting() == len(waiting), "a request in line")
        assert gauge("waiting") >= 2

        started = time.monotonic()
        refused = await client.get("/v1/slow")
        refused_after = time.monotonic() - started

        slow.gate.set()
        answers = await asyncio.gather(first, *waiting)

    assert refused.status_code == 503
    assert refused_after < 0.5
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert admission.slots.held == 0
    assert admission.slots.waiting() == 0


async def test_a_request_that_waited_too_long_is_refused() -> None:
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=1, max_waiting=4, max_wait_seconds=0.1)
    waited_before = shed("waited")
    async with client_of(app) as client:
        running = asyncio.create_task(client.get("/v1/slow"))
        await until(lambda: slow.started == 1, "a request running")
        started = time.monotonic()
        refused = await client.get("/v1/slow")
        waited = time.monotonic() - started
        slow.gate.set()
        await running

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert 0.1 <= waited < 1
    assert shed("waited") == waited_before + 1
    assert admission.slots.held == 0
    assert admission.slots.waiting() == 0


async def test_a_request_that_fails_mid_answer_gives_its_slot_back() -> None:
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=1)
    slow.gate.set()
    transport = httpx.ASGITransport(app=app)  # the app's exceptions raised here
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # The error escapes every middleware (the answer had begun); a server cuts it off.
        with pytest.raises(RuntimeError):
            await client.get("/v1/fails")
        after = await client.get("/v1/slow")

    assert after.status_code == 200
    assert admission.slots.held == 0


async def _call(app: ASGIApp, path: str) -> None:
    """One GET straight through the ASGI interface, never disconnecting."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never says more
        raise AssertionError

    async def send(message: Message) -> None:
        pass

    await app(scope, receive, send)


async def test_a_cancelled_request_gives_its_slot_back_whether_running_or_in_line() -> None:
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=1, max_waiting=1, max_wait_seconds=30)
    admitted_before, waiting_before = gauge("admitted"), gauge("waiting")
    running = asyncio.create_task(_call(app, "/v1/slow"))
    await until(lambda: slow.started == 1, "a request running")
    in_line = asyncio.create_task(_call(app, "/v1/slow"))
    await until(lambda: admission.slots.waiting() == 1, "a request in line")

    in_line.cancel()
    await asyncio.gather(in_line, return_exceptions=True)
    assert admission.slots.waiting() == 0
    assert admission.slots.held == 1
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)

    assert admission.slots.held == 0
    assert (gauge("admitted"), gauge("waiting")) == (admitted_before, waiting_before)


@asynccontextmanager
async def real_server(app: FastAPI) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="critical")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, "the server listening")
        yield port
    finally:
        server.should_exit = True
        await serving


async def test_a_client_that_disconnects_mid_request_frees_its_slot() -> None:
    slow = Slow()
    app, admission = build_app(slow, max_in_flight=2)
    async with real_server(app) as port:
        # Mid-upload: the route is reading a body that never arrives.
        _, upload = await asyncio.open_connection("127.0.0.1", port)
        upload.write(b"POST /v1/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc")
        # Mid-answer: the route is working when the client goes.
        _, waiting = await asyncio.open_connection("127.0.0.1", port)
        waiting.write(b"GET /v1/slow HTTP/1.1\r\nHost: t\r\n\r\n")
        await until(lambda: admission.slots.held == 2 and slow.started == 1, "both admitted")

        upload.close()
        await until(lambda: admission.slots.held == 1, "the upload's slot back")
        waiting.close()
        await asyncio.sleep(0.05)
        slow.gate.set()  # the abandoned work ends; its answer goes nowhere
        await until(lambda: admission.slots.held == 0, "every slot back")

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            after = await client.get("/v1/slow")
    assert after.status_code == 200


async def test_slots_go_to_the_longest_waiter_and_a_newcomer_cannot_overtake() -> None:
    slots = Slots(1, max_waiting=3, patience=5)
    taken = slots.try_take()
    assert taken
    order: list[int] = []

    async def wait(number: int) -> None:
        assert await slots.take()
        order.append(number)

    waiters = []
    for number in range(3):
        waiters.append(asyncio.create_task(wait(number)))
        await until(lambda: slots.waiting() == len(waiters), "a waiter in line")
    slots.release()  # handed to waiter 0 ...
    assert not slots.try_take()  # ... so a newcomer finds no free slot
    await until(lambda: order == [0], "the first waiter admitted")
    slots.release()
    slots.release()
    await asyncio.gather(*waiters)
    slots.release()

    assert order == [0, 1, 2]
    assert slots.held == 0
    assert slots.waiting() == 0


async def test_a_line_that_stands_is_served_newest_first() -> None:
    slots = Slots(1, max_waiting=3, patience=0.2)
    taken = slots.try_take()
    assert taken
    order: list[int] = []

    async def wait(number: int) -> None:
        if await slots.take():
            order.append(number)

    waiters = []
    for number in range(3):
        waiters.append(asyncio.create_task(wait(number)))
        await until(lambda: slots.waiting() == len(waiters), "a waiter in line")
    await asyncio.sleep(0.1)  # the oldest has waited half its patience: overload
    assert slots.standing()
    slots.release()
    await until(lambda: order == [2], "the newest waiter admitted")
    await asyncio.gather(*waiters)  # the older two wait out their patience, refused

    assert order == [2]
    slots.release()
    assert slots.held == 0
    assert slots.waiting() == 0


async def test_a_slot_handed_over_as_its_waiter_is_cancelled_is_passed_on() -> None:
    slots = Slots(1, max_waiting=2, patience=5)
    taken = slots.try_take()
    assert taken
    first = asyncio.create_task(slots.take())
    await until(lambda: slots.waiting() == 1, "the first waiter in line")
    second = asyncio.create_task(slots.take())
    await until(lambda: slots.waiting() == 2, "the second waiter in line")

    slots.release()  # the slot goes to the first waiter ...
    first.cancel()  # ... which is cancelled before it runs again
    await asyncio.gather(first, return_exceptions=True)

    assert await asyncio.wait_for(second, 1) is True  # the slot was passed on, not lost
    slots.release()
    assert slots.held == 0
    assert slots.waiting() == 0


@pytest.fixture
def engine(sqlite_engine: AsyncEngine) -> AsyncEngine:
    return sqlite_engine  # admission control sits above the database: one backend shows it


@pytest.fixture
def settings(settings: Settings) -> Settings:
    http = HttpSettings(max_in_flight=2, max_waiting=0)
    return settings.model_copy(update={"http": http})


async def test_the_application_refuses_beyond_its_bound_and_still_answers_probes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/livez")).status_code == 200  # builds the middleware stack
    admission = _admission_in(app)
    taken = [admission.slots.try_take() for _ in range(2)]  # every slot busy
    assert taken == [True, True]
    try:
        refused = await client.get("/v1/roadmaps")
        livez = await client.get("/livez")
        readyz = await client.get("/readyz")
        metrics = await client.get("/metrics")
        stream = await client.get("/v1/me/stream")  # refused for want of credentials, not load
    finally:
        admission.slots.release()
        admission.slots.release()
    recovered = await client.get("/v1/roadmaps")

    assert refused.status_code == 503
    assert refused.json()["type"] == "/problems/overloaded"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-request-id"] == refused.json()["request_id"]
    assert refused.headers["content-security-policy"]
    assert (livez.status_code, readyz.status_code, metrics.status_code) == (200, 200, 200)
    assert "skilltree_http_requests_in_flight" in metrics.text
    assert "skilltree_http_shed_total" in metrics.text
    assert stream.status_code == 401
    assert recovered.status_code == 200


def _admission_in(app: FastAPI) -> AdmissionMiddleware:
    layer: ASGIApp | None = app.middleware_stack
    while layer is not None and not isinstance(layer, AdmissionMiddleware):
        layer = getattr(layer, "app", None)
    assert layer is not None, "the application has no admission control"
    return layer


async def test_every_route_of_the_application_that_answers_a_stream_is_never_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/livez")).status_code == 200  # builds the middleware stack
    streams = {
        route.path
        for route in iter_route_contexts(app.routes)
        if getattr(route.original_route, "response_class", None) is EventStreamResponse
    }
    exempt = _admission_in(app).streams

    assert streams  # the application has live streams
    assert exempt is not None
    assert {path for path in streams if exempt.fullmatch(path)} == streams
    assert exempt.fullmatch("/v1/roadmaps") is None
