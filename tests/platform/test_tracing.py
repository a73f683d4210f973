"""Tracing: the span tree of a request, one trace from a request through the outbox and a task
to the webhook it sends, trace ids in the log lines, and a real OTLP/HTTP export."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from skilltree.app import create_app
from skilltree.platform import migrations
from skilltree.platform.config import (
    AppSettings,
    DatabaseSettings,
    LogSettings,
    MailSettings,
    RateLimitSettings,
    Settings,
    TracingSettings,
    WebhookSettings,
)
from skilltree.platform.db import Database
from skilltree.platform.observability.logging import configure_logging
from skilltree.platform.observability.tracing import configure_tracing, stop_tracing, task_span
from skilltree.platform.queue.models import OutboxMessage
from skilltree.webhooks import client as webhooks
from tests.support.http_sink import Sink, running_sink
from tests.support.processes import (
    base_env,
    free_port,
    migrate,
    running,
    serve_command,
    wait_until_ready,
)

EXPORTER = InMemorySpanExporter()
TRACED = TracingSettings(enabled=True, exporter="none")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, into memory; off again afterwards."""
    configure_tracing(TRACED, SimpleSpanProcessor(EXPORTER))
    EXPORTER.clear()
    yield EXPORTER
    stop_tracing()


@pytest.fixture
async def traced_app(
    tmp_path: Path, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """An app on a database of its own (its engine carries the statement spans)."""
    database = Database.from_settings(
        DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}")
    )
    await migrations.upgrade(database.engine)
    settings = Settings(
        app=AppSettings(env="test"),
        log=LogSettings(format="json"),
        mail=MailSettings(outbox_dir=tmp_path / "mail"),
        rate_limit=RateLimitSettings(enabled=False),
        tracing=TRACED,
    )
    app = create_app(settings, database=database)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
    finally:
        await database.dispose()


def _server_span(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    servers = [span for span in spans if span.name == name and span.parent is None]
    assert len(servers) == 1, [span.name for span in spans]
    return servers[0]


def _descends_from(span: ReadableSpan, ancestor: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    by_id = {s.context.span_id: s for s in spans}
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


async def test_a_request_is_one_trace_with_its_sql_statements_inside(
    traced_app: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    response = await traced_app.get("/v1/roadmaps")

    assert response.status_code == 200
    finished = list(spans.get_finished_spans())
    server = _server_span(finished, "GET /v1/roadmaps")
    statements = [
        span for span in finished if span.attributes and "db.statement" in span.attributes
    ]
    assert statements
    for statement in statements:
        assert statement.context.trace_id == server.context.trace_id
        assert _descends_from(statement, server, finished)
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/roadmaps"


async def test_probes_and_scrapes_are_not_traced(
    traced_app: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await traced_app.get("/livez")
    await traced_app.get("/metrics")

    # neither the requests nor the statements a scrape runs outside any trace
    assert list(spans.get_finished_spans()) == []


async def test_log_lines_written_inside_a_request_carry_its_trace_and_span_ids(
    traced_app: httpx.AsyncClient, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(format="json"))

    await traced_app.get("/v1/roadmaps")

    server = _server_span(list(spans.get_finished_spans()), "GET /v1/roadmaps")
    await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line.get("logger") == "skilltree.access"]
    assert access
    assert access[-1]["trace_id"] == format(server.context.trace_id, "032x")
    assert len(access[-1]["span_id"]) == 16


async def test_the_trace_goes_from_the_request_through_the_outbox_and_task_to_the_webhook(
    traced_app: httpx.AsyncClient, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    # The request: a sign-up, which queues its verification e-mail through the outbox.
    registered = await traced_app.post(
        "/v1/auth/register",
        json={"email": "trace@example.org", "password": "correct horse battery staple 42",
              "display_name": "Trace"},
    )  # fmt: skip
    assert registered.status_code == 202
    database = Database.from_settings(
        DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}")
    )
    try:
        async with database.unit_of_work() as session:
            labels = (await session.scalars(select(OutboxMessage.labels))).one()
    finally:
        await database.dispose()
    request = _server_span(list(spans.get_finished_spans()), "POST /v1/auth/register")

    # The task, as the worker runs it, and the webhook it sends.
    settings = WebhookSettings(allow_private_addresses=True, allow_http=True)
    with running_sink() as sink:
        with task_span("webhooks.deliver", labels):
            result = await webhooks.post(sink.url("/hook"), "{}", {}, settings)
        assert result.succeeded

    finished = list(spans.get_finished_spans())
    task = next(span for span in finished if span.name == "task webhooks.deliver")
    outgoing = next(span for span in finished if span.name == "POST" and span.parent)
    trace_id = format(request.context.trace_id, "032x")
    assert labels["traceparent"].split("-")[1] == trace_id
    assert _descends_from(task, request, finished)
    assert outgoing.parent is not None
    assert outgoing.parent.span_id == task.context.span_id
    traceparent = sink.received[0].headers["traceparent"]
    assert traceparent.split("-")[1:3] == [trace_id, format(outgoing.context.span_id, "016x")]


async def test_spans_are_exported_over_otlp_http_to_a_collector(tmp_path: Path) -> None:
    with running_sink() as collector:
        env = base_env(
            f"sqlite+aiosqlite:///{tmp_path / 'exported.db'}",
            SKILLTREE_TRACING_ENABLED="true",
            SKILLTREE_TRACING_OTLP_ENDPOINT=collector.url("/v1/traces"),
            SKILLTREE_TRACING_SERVICE_NAME="skilltree-under-test",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        migrate(env["SKILLTREE_DATABASE_URL"])
        port = free_port()
        with running(serve_command(port), env, tmp_path / "serve.log") as server:
            await asyncio.to_thread(wait_until_ready, f"http://127.0.0.1:{port}", server)
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://127.0.0.1:{port}/v1/roadmaps")).status_code == 200
            exported = await _exported_spans(collector, "GET /v1/roadmaps", seconds=30)

    service, span = exported
    assert service == "skilltree-under-test"
    assert span.kind == span.SPAN_KIND_SERVER
    assert len(span.trace_id) == 16


async def _exported_spans(collector: Sink, name: str, seconds: float) -> tuple[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for received in list(collector.received):
            assert received.path == "/v1/traces"
            assert received.headers["content-type"] == "application/x-protobuf"
            request = ExportTraceServiceRequest.FromString(received.body)
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        if span.name == name:
                            return attributes["service.name"], span
        # The exporter sends in batches on its own schedule.
        await asyncio.sleep(0.1)
    raise AssertionError(f"no span {name!r} reached the collector within {seconds} s")
