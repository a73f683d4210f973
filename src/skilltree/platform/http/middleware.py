"""Pure ASGI middleware for the hot path: request ids, access log, body limit, last-resort 500.

Pure ASGI (no BaseHTTPMiddleware) keeps streaming intact, adds no task per request and lets each
middleware see exactly the messages that cross it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.errors import DependencyUnavailable, DomainError, PayloadTooLarge
from skilltree.platform.http.outages import is_outage
from skilltree.platform.http.problems import domain_error_response, problem_response
from skilltree.platform.observability.context import ClientInfo, client_var, request_id_var
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is echoed into logs and headers: accept only short, plain tokens, so a client
# cannot inject log lines or headers through it.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Polled by machines every few seconds (orchestrators, the metrics scraper): never rate-limited,
# and logged at debug level.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/startupz", "/metrics"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = get_logger("skilltree.access")
error_log = get_logger("skilltree.errors")


class HttpMiddleware:
    """Base of skilltree's middleware: HTTP requests go to `handle`, everything else
    (lifespan events, websockets) passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(HttpMiddleware):
    """Accept a safe incoming X-Request-ID or make one; expose it to logs and the response."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        client_token = client_var.set(_client_info(scope))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            client_var.reset(client_token)


def request_id_of(scope: Scope) -> str:
    """The request's id: a safe incoming X-Request-ID, or a new one."""
    return _incoming_request_id(scope) or uuid.uuid4().hex


def client_info(scope: Scope) -> ClientInfo:
    """The client as logs and audit records name it."""
    return _client_info(scope)


def log_request(scope: Scope, route: str, status: int, sent_bytes: int, seconds: float) -> None:
    """The access log's line and the RED metrics for a request answered outside the stack."""
    AccessLogMiddleware._log(scope, route, status, sent_bytes, seconds)
    AccessLogMiddleware._count(scope, route, status, seconds)


def _client_info(scope: Scope) -> ClientInfo:
    user_agent = next((v for k, v in scope["headers"] if k == b"user-agent"), b"")
    return ClientInfo(
        ip=scope["client"][0] if scope.get("client") else "",
        user_agent=user_agent.decode("latin-1")[:300],
    )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if SAFE_REQUEST_ID.match(candidate) else None
    return None


class AccessLogMiddleware(HttpMiddleware):
    """One structured line per request (id, method, route template, status, duration, bytes),
    and the request counted in the RED metrics: rate, errors by status, duration."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # if the app dies before responding, the server sends a 500
        sent_bytes = 0

        async def send_and_observe(message: Message) -> None:
            nonlocal status, sent_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            self._log(scope, route, status, sent_bytes, seconds)
            self._count(scope, route, status, seconds)

    @staticmethod
    def _log(scope: Scope, route: str | None, status: int, sent_bytes: int, seconds: float) -> None:
        path = scope["path"]
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": route or path,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "bytes": sent_bytes,
            "client": scope["client"][0] if scope.get("client") else None,
        }
        # Probes and scrapes come every few seconds: their lines would drown the real traffic.
        if path in PROBE_PATHS:
            access_log.debug("request", **fields)
        else:
            access_log.info("request", **fields)

    @staticmethod
    def _count(scope: Scope, route: str | None, status: int, seconds: float) -> None:
        # Labels come from a closed set, whatever clients send: a metric series per raw path
        # or invented method would grow without bound.
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        template = route or "unmatched"
        HTTP_REQUESTS.labels(method, template, str(status)).inc()
        HTTP_REQUEST_DURATION.labels(method, template).observe(seconds)


def _route_template(scope: Scope) -> str | None:
    """The matched route's template ('/v1/roadmaps/{slug}'), which groups requests in logs and
    metrics; None when no route matched."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else None


class BodySizeLimitMiddleware(HttpMiddleware):
    """Refuse bodies over max_bytes with 413, by Content-Length up front or while streaming."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        problems_by_path: Mapping[str, type[PayloadTooLarge]] | None = None,
        unlimited_path_suffixes: tuple[str, ...] = (),
        unlimited_path_prefixes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        # Routes that stream bodies elsewhere and enforce limits of their own (file uploads).
        self.unlimited_path_suffixes = unlimited_path_suffixes
        self.unlimited_path_prefixes = unlimited_path_prefixes
        # Where an endpoint documents a problem type of its own for a body too large
        # (/problems/roadmap-too-large for imports), the early refusal uses it too.
        self.problems_by_path = dict(problems_by_path or {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope["path"])
        if path.endswith(self.unlimited_path_suffixes) or path.startswith(
            self.unlimited_path_prefixes
        ):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def receive_counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    problem = self.problems_by_path.get(scope["path"], PayloadTooLarge)
                    raise problem(self._detail(), limit=self.max_bytes)
            return message

        async def send_or_refuse(message: Message) -> None:
            nonlocal started
            if exceeded:
                # Whatever the app made of the interrupted body (a body parser's 400), the
                # answer is the 413 it was.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_or_refuse)
        except PayloadTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    def _detail(self) -> str:
        return f"The request body exceeds the limit of {self.max_bytes} bytes."

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.problems_by_path.get(scope["path"], PayloadTooLarge)
        response = problem_response(
            413,
            title=problem.title,
            type_="/problems/" + problem.type_slug,
            detail=self._detail(),
            instance=scope["path"],
            limit=self.max_bytes,
            headers={"connection": "close"},
        )
        await response(scope, receive, send)


def _unavailable() -> DependencyUnavailable:
    return DependencyUnavailable(
        "A service this request needs cannot be reached right now; retry after Retry-After. "
        "Retry a write with the same Idempotency-Key: it may or may not have been made."
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class UnhandledErrorMiddleware(HttpMiddleware):
    """The last resort: a bug becomes a logged traceback and a 500 problem with no internals; a
    database or Redis that cannot be reached becomes a 503 with Retry-After (platform/http/
    outages.py), since retrying is what the client should do."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response_started = False

        async def send_tracking(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except DomainError as error:
            # An expected failure raised below the routes' handlers (a middleware's own
            # database work turned away by load shedding, say) is still the client's answer.
            if response_started:
                raise
            await domain_error_response(error, scope["path"])(scope, receive, send)
        except Exception as error:
            if is_outage(error) and not response_started:
                error_log.warning(
                    "dependency unavailable",
                    method=scope["method"],
                    path=scope["path"],
                    error=type(error).__name__,
                )
                await domain_error_response(_unavailable(), scope["path"])(scope, receive, send)
                return
            error_log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if response_started:
                raise  # too late for a clean response; the server closes the connection
            response = problem_response(
                500,
                detail="An unexpected error occurred. Quote the request id when reporting it.",
                instance=scope["path"],
            )
            await response(scope, receive, send)
