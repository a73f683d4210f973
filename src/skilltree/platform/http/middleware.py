"""Pure ASGI middleware for the hot path: request ids, access log, body limit, last-resort 500.

Pure ASGI (no BaseHTTPMiddleware) keeps streaming intact, adds no task per request and lets each
middleware see exactly the messages that cross it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.errors import DependencyUnavailable, DomainError, PayloadTooLarge
from skilltree.platform.http.outages import is_outage
from skilltree.platform.http.problems import (
    PROBLEM_TYPE_PREFIX,
    domain_error_response,
    problem_response,
)
from skilltree.platform.observability.context import ClientInfo, client_var, request_id_var
from skilltree.platform.observability.logging import get_logger, log_access
from skilltree.platform.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_NAME = REQUEST_ID_HEADER.encode("latin-1")
# An incoming id is echoed into logs and headers: accept only short, plain tokens, so a client
# cannot inject log lines or headers through it.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Polled by machines every few seconds (orchestrators, the metrics scraper): never rate-limited,
# and logged at debug level.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/startupz", "/metrics"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

error_log = get_logger("skilltree.errors")


class HttpMiddleware:
    """Base of skilltree's middleware: HTTP requests go to `handle`, everything else
    (lifespan events, websockets) passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine of its own: the caller awaits `handle`'s (or the app's) directly, so
        # each layer adds one coroutine per request instead of two, and one frame instead of two
        # to every resumption of the request's innermost await.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(HttpMiddleware):
    """Accept a safe incoming X-Request-ID or make one; expose it to logs and the response."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming, user_agent = _request_id_and_user_agent(scope)
        request_id = request_id_from(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        client = scope.get("client")
        client_info = ClientInfo(
            ip=client[0] if client else "", user_agent=user_agent.decode("latin-1")[:300]
        )
        client_token = client_var.set(client_info)
        id_header = (REQUEST_ID_NAME, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_header(message.get("headers", ()), id_header)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            client_var.reset(client_token)


def first_raw_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of the (lower-case) header `name` in raw ASGI headers, or None: what
    `Headers.get` answers, without building a `Headers`."""
    for key, value in headers:
        if key == name:
            return value
    return None


def request_id_from(incoming: bytes | None) -> str:
    """The request's id: the incoming X-Request-ID's value when it is safe, or a new one."""
    if incoming is not None:
        candidate = incoming.decode("latin-1")
        if SAFE_REQUEST_ID.match(candidate):
            return candidate
    return new_request_id()


# uuid4's version (4) and variant (RFC 4122) bits, set on 16 random bytes as `uuid.UUID` sets them.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def new_request_id() -> str:
    """`uuid.uuid4().hex`, without building a `UUID` (a third of the request id's cost)."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


def _with_header(
    headers: Iterable[tuple[bytes, bytes]], header: tuple[bytes, bytes]
) -> list[tuple[bytes, bytes]]:
    """The response's raw headers with `header` set (any other of its name removed), as
    `MutableHeaders` would set it, without building one per response."""
    name = header[0]
    raw = [item for item in headers if item[0] != name]
    raw.append(header)
    return raw


def log_request(scope: Scope, route: str, status: int, sent_bytes: int, seconds: float) -> None:
    """The access log's line and the RED metrics for a request answered outside the stack."""
    AccessLogMiddleware._log(scope, route, status, sent_bytes, seconds)
    AccessLogMiddleware._count(scope, route, status, seconds)


def _request_id_and_user_agent(scope: Scope) -> tuple[bytes | None, bytes]:
    """The first X-Request-ID and User-Agent values (b"" without one), in one pass over the
    request's headers."""
    request_id: bytes | None = None
    user_agent: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if request_id is None:
                request_id = bytes(value)
                if user_agent is not None:
                    break
        elif name == b"user-agent" and user_agent is None:
            user_agent = bytes(value)
            if request_id is not None:
                break
    return request_id, user_agent or b""


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
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": route or path,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "bytes": sent_bytes,
            "client": client[0] if client else None,
        }
        # Probes and scrapes come every few seconds: their lines would drown the real traffic.
        log_access(fields, debug=path in PROBE_PATHS)

    @staticmethod
    def _count(scope: Scope, route: str | None, status: int, seconds: float) -> None:
        method = scope["method"]
        key = (method, route, status)
        observers = _observers.get(key)
        if observers is None:
            observers = _observers_for(method, route, status)
        observers[0].inc()
        observers[1].observe(seconds)


# The RED metrics' labelled series by (method, route, status): `labels()` checks and joins its
# values on every call, several microseconds a request. Bounded like the series themselves:
# a method outside KNOWN_METHODS is never a key, routes are templates, statuses three digits.
_observers: dict[tuple[str, str | None, int], tuple[Counter, Histogram]] = {}


def _observers_for(method: str, route: str | None, status: int) -> tuple[Counter, Histogram]:
    # Labels come from a closed set, whatever clients send: a metric series per raw path or
    # invented method would grow without bound.
    known = method in KNOWN_METHODS
    label = method if known else "other"
    template = route or "unmatched"
    observers = (
        HTTP_REQUESTS.labels(label, template, str(status)),
        HTTP_REQUEST_DURATION.labels(label, template),
    )
    if known:
        _observers[(method, route, status)] = observers
    return observers


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


class CorsMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with the request that carries no `Origin` (every request
    but a browser's cross-origin one) answered without it: such a response gets no CORS header,
    only `Vary: Origin`, which is added here from raw bytes the way Starlette adds it, instead
    of through a `Headers` of the request and a `MutableHeaders` of the response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if any(name == b"origin" for name, _ in scope["headers"]):
            headers = Headers(scope=scope)
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                await self._preflight(headers, scope["path"])(scope, receive, send)
                return
            await super().__call__(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _vary_on_origin(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_varying)

    def _preflight(self, request_headers: Headers, path: str) -> Response:
        """Starlette's answer to a preflight, with its refusal as a problem: what was refused
        (origin, method, headers, private-network) in `refused`, instead of plain text. A
        browser reads only the status; a person debugging a refused call reads the body."""
        response = self.preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        kept = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-type", "content-length")
        }
        return problem_response(
            400,
            title="CORS preflight refused",
            type_=PROBLEM_TYPE_PREFIX + "cors-preflight-refused",
            detail="This cross-origin request is not allowed: " + ", ".join(refused) + ".",
            instance=path,
            headers=kept,
            refused=refused,
        )


def _vary_on_origin(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with "Origin" added to `Vary` as Starlette adds it: the values of every
    `vary` header and "Origin" joined into the first, the others removed; appended when the
    response has none."""
    raw = list(headers)
    at = [index for index, (name, _) in enumerate(raw) if name == b"vary"]
    if not at:
        raw.append((b"vary", b"Origin"))
        return raw
    joined = b", ".join([*(raw[index][1] for index in at), b"Origin"])
    raw[at[0]] = (b"vary", joined)
    for index in reversed(at[1:]):
        del raw[index]
    return raw
