"""OpenTelemetry tracing: one trace from a request through the outbox and the task queue to the
outgoing webhook, with its ids in every log line.

Off by default (SKILLTREE_TRACING_ENABLED). When on, a process configures tracing once, as it
configures logging: a tracer provider exporting over OTLP/HTTP (or to nowhere), and the Redis
and httpx clients instrumented. The app adds a server span per request and the database engine
a span per statement. A task carries its trace across the queue in its labels (W3C
`traceparent`), written when the task is enqueued inside a traced request and read by the worker
that runs it, so the webhook's `traceparent` header continues the request's trace.

The OpenTelemetry packages are imported only when tracing is on: a process that does not trace
does not pay for them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from skilltree.platform.config import TracingSettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.sampling import Sampler
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from skilltree.platform.db import Database

# Probes and scrapes are not traced: they would outnumber every real request.
UNTRACED_URLS = "livez,readyz,startupz,metrics"
TRACE_LABELS = ("traceparent", "tracestate")

_configured = False
_instrumented_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def configure_tracing(settings: TracingSettings, *extra: SpanProcessor) -> None:
    """Install the process's tracer provider and instrument Redis and httpx (once per process;
    OpenTelemetry's provider cannot be replaced). `extra` processors are for tests."""
    global _configured
    if not settings.enabled or _configured:
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    if _provider_installed():
        # Configured before and stopped since: instrument again, against the same provider.
        RedisInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()
        _configured = True
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=_within_traces(ParentBased(TraceIdRatioBased(settings.sample_ratio))),
    )
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.otlp_endpoint)))
    for processor in extra:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _configured = True


def _within_traces(sampler: Sampler) -> Sampler:
    """Outgoing calls (SQL, Redis, HTTP) are recorded inside a request's or a task's trace
    only: the relay's and scheduler's polling statements, twice a second, are not traces."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class WithinTraces(Sampler):
        def should_sample(  # type: ignore[no-untyped-def]
            self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
            trace_state=None,
        ) -> SamplingResult:  # fmt: skip
            parent = trace.get_current_span(parent_context).get_span_context()
            if kind == trace.SpanKind.CLIENT and not parent.is_valid:
                return SamplingResult(Decision.DROP)
            return sampler.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"WithinTraces{{{sampler.get_description()}}}"

    return WithinTraces()


def _provider_installed() -> bool:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def instrument_app(app: FastAPI, settings: TracingSettings) -> None:
    """A server span per request, named by its route template."""
    if not settings.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS)


def instrument_database(database: Database, settings: TracingSettings) -> None:
    """`instrument_engine` for each engine the database's units of work connect through."""
    for engine in database.engines:
        instrument_engine(engine, settings)


def instrument_engine(engine: AsyncEngine, settings: TracingSettings) -> None:
    """A span per SQL statement on this engine (once per engine, however many apps use it)."""
    if not settings.enabled or engine.sync_engine in _instrumented_engines:
        return
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # The instrumentor's own entry point instruments only the first engine of a process and
    # patches create_engine everywhere; its engine tracer instruments exactly this one.
    connections = metrics.get_meter("skilltree.db").create_up_down_counter(
        "db.client.connections.usage"
    )
    EngineTracer(trace.get_tracer("skilltree.db"), engine.sync_engine, connections)  # type: ignore[no-untyped-call]
    _instrumented_engines.add(engine.sync_engine)


def current_trace_labels() -> dict[str, str]:
    """The current trace context as task labels (empty when nothing is being traced)."""
    if not _configured:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def task_span(task_name: str, labels: Mapping[str, Any]) -> Iterator[None]:
    """Run a task inside a span that continues the trace its labels carry."""
    if not _configured:
        yield
        return
    from opentelemetry import propagate, trace

    carrier = {key: str(labels[key]) for key in TRACE_LABELS if key in labels}
    tracer = trace.get_tracer("skilltree.queue")
    with tracer.start_as_current_span(
        f"task {task_name}",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.operation": "process", "skilltree.task": task_name},
    ):
        yield


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids in hex, for log lines; None outside a recorded span."""
    if not _configured:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def stop_tracing() -> None:
    """Undo `configure_tracing`'s instrumentation, for tests that trace and then go on. The
    tracer provider stays (OpenTelemetry sets it once per process); a later
    `configure_tracing` instruments again against it."""
    global _configured
    if not _configured:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    _configured = False
