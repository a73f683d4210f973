"""`GET /livez` answered at the front of the middleware stack.

A liveness probe asks only whether the event loop answers. Routed, it crosses every middleware
layer, FastAPI's routing and a response model to send the same fifteen bytes each time, and
none of those layers acts on it: probes are never rate-limited, refused for overload or logged
at info, and the body is too small to compress. This middleware, just inside the proxy-headers
middleware and active whatever the configuration (the fast path is not), lets the first probe
(per scheme: https adds HSTS) go down the stack to the route and keeps its answer, status,
headers and body; later probes get that answer at once, with their own request id
(`RequestIdMiddleware`'s rules) and, when the access log is on, the same debug line and RED
metrics as the routed probe. Keeping the stack's own answer, rather than building one, means
the two cannot drift: whatever the route, CORS (`Vary`), compression or the security headers
add is in it.

What could be answered differently goes down the stack every time: another method or path, a
query string, a request body, an Origin (CORS headers), and an Accept-Encoding when the body is
as large as the compression middleware's minimum (`SKILLTREE_HTTP_COMPRESSION_MIN_BYTES` set
below fifteen bytes); a compressed answer is never kept. The route stays declared, so the
OpenAPI document keeps it. tests/platform/test_probes.py compares both answers.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.http.middleware import (
    REQUEST_ID_NAME,
    HttpMiddleware,
    log_request,
    request_id_from,
)
from skilltree.platform.observability.context import request_id_var

LIVEZ = "/livez"
# Request headers that could change the routed answer or need the stack (a body, CORS).
STACK_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"origin"})


class Kept:
    """The routed probe's answer, but for its request id."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> None:
        self.headers = headers
        self.body = body


class LivenessMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, access_log: bool, minimum_size: int) -> None:
        super().__init__(app)
        self.access_log = access_log
        self.minimum_size = minimum_size  # the compression middleware's
        self._kept: dict[bool, Kept] = {}  # by whether the request came over https
        self.answered = 0  # probes answered here, without the stack

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != LIVEZ or scope["method"] != "GET" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        incoming = None
        accepts_codings = False
        for name, value in scope["headers"]:
            if name in STACK_HEADERS:
                await self.app(scope, receive, send)
                return
            if name == b"x-request-id" and incoming is None:
                incoming = value
            elif name == b"accept-encoding":
                accepts_codings = True
        https = scope.get("scheme") == "https"
        kept = self._kept.get(https)
        if kept is None:
            await self._keep(https, scope, receive, send)
            return
        if accepts_codings and len(kept.body) >= self.minimum_size:
            await self.app(scope, receive, send)  # the stack would compress it
            return
        started = time.perf_counter()
        request_id = request_id_from(incoming)
        token = request_id_var.set(request_id)
        try:
            headers = list(kept.headers)
            headers.append((REQUEST_ID_NAME, request_id.encode("latin-1")))
            self.answered += 1
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": kept.body, "more_body": False})
            if self.access_log:
                log_request(scope, LIVEZ, 200, len(kept.body), time.perf_counter() - started)
        finally:
            request_id_var.reset(token)

    async def _keep(self, https: bool, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the probe down the stack, and keep its answer when it is a whole uncompressed
        200."""
        start: Message | None = None

        async def send_and_keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message.get("more_body", False):
                start = None  # a body in parts: not kept
            elif (
                start is not None
                and start["status"] == 200
                and https not in self._kept
                and not any(name == b"content-encoding" for name, _ in start.get("headers", ()))
            ):
                # The request id is the request's own; RequestIdMiddleware appends it last.
                headers = tuple(h for h in start.get("headers", ()) if h[0] != REQUEST_ID_NAME)
                self._kept[https] = Kept(headers, bytes(message.get("body", b"")))
            await send(message)

        await self.app(scope, receive, send_and_keep)
