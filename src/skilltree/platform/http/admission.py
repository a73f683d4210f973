"""Admission control: a bound on the HTTP requests one worker runs at once (decision 0060).

A worker accepts every connection the kernel hands it and, without a bound, starts every request
it reads: at 1,024 connections all of them run interleaved, each one's middleware,
authentication, cache and Redis calls and serialisation competing with the 1,023 others, so they
finish together and late (seconds), and the database pool's bounded line
(platform/fair_pool.py) sees only the part of the crowd that reached it. This middleware bounds
the crowd at the front instead:

- at most `max_in_flight` requests run at once (a slot each);
- beyond them, up to `max_waiting` wait in line, each at most `max_wait_seconds`: first come
  first served, unless the oldest has waited half that time (overload rather than a burst),
  when the newest are served first and the oldest refused as their wait runs out;
- any other request, or one whose wait ran out, is answered `503 /problems/overloaded` with
  `Retry-After`, without running.

Why a line and not only an instant refusal: a refusal is cheap (about a tenth of a millisecond
of CPU) but not free, and a client that ignores Retry-After asks again the moment it is
answered. Refused at once, a crowd of such clients keeps the worker busy refusing, and the event
loop's every turn — which each admitted request needs a dozen of — grows with the crowd: the
admitted requests then took the whole run to finish (decision 0060 has the figures). Held in
line, a request costs nothing until it is admitted or its wait runs out, so the refusals come at
most `max_waiting / max_wait_seconds` a second. Served newest first under overload, an admitted
request has hardly waited, so the wait can be as long as Retry-After without the admitted
requests' latency growing with it.

Not counted, never refused: the probes and /metrics (an orchestrator must see a busy worker as
alive, and an operator must see its metrics), and live streams — routes that answer
`text/event-stream` — which hold their request for minutes while costing nothing between events
(a browser's EventSource also gives up for good on a 503, where it would reconnect after a
network error). WebSockets pass through like every HTTP-only middleware's.

A slot is given back however the request ends: answered, failed, cancelled, or abandoned by a
client that disconnected (the server's task then runs to its end or is cancelled; either way the
`finally` releases it). A slot freed while requests wait goes straight to a waiter, so a request
arriving then cannot overtake the line.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.config import HttpSettings
from skilltree.platform.errors import ServiceOverloaded
from skilltree.platform.http.middleware import (
    KNOWN_METHODS,
    PROBE_PATHS,
    CorsMiddleware,
    HttpMiddleware,
)
from skilltree.platform.http.problems import domain_error_response
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.observability.metrics import (
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_SHED,
)

STREAM_MEDIA_TYPE = "text/event-stream"
# The access log's and the metrics' route for a refused request: it was never routed.
SHED_ROUTE = "(shed)"
RETRY_AFTER_SECONDS = 1
SHED_LOG_SECONDS = 1.0
NAMED_GROUP = re.compile(r"\(\?P<\w+>")

log = get_logger("skilltree.admission")
_admitted = HTTP_IN_FLIGHT.labels("admitted")
_waiting = HTTP_IN_FLIGHT.labels("waiting")
_shed_line_full = HTTP_SHED.labels("line_full")
_shed_waited = HTTP_SHED.labels("waited")


Waiter = tuple[asyncio.Future[None], float]  # a request in line, and when it joined


class Slots:
    """At most `limit` holders at once; up to `max_waiting` more wait, each for at most
    `patience` seconds: in arrival order, newest first once the oldest has waited too long."""

    def __init__(self, limit: int, *, max_waiting: int, patience: float) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.patience = patience
        self.held = 0
        self._waiters: deque[Waiter] = deque()  # oldest first

    @classmethod
    def of(cls, settings: HttpSettings) -> Slots:
        return cls(
            settings.max_in_flight,
            max_waiting=settings.max_waiting,
            patience=settings.max_wait_seconds,
        )

    def waiting(self) -> int:
        """Requests in line for a slot right now."""
        return len(self._waiters)

    def standing(self) -> bool:
        """Whether the oldest request in line has waited half its patience: overload rather
        than a burst. Served in arrival order from then on, every admitted request would have
        waited nearly the whole patience (and its client may have given up); the newest are
        served instead, and the oldest refused as their wait runs out ("adaptive LIFO")."""
        return bool(self._waiters) and (time.monotonic() - self._waiters[0][1] >= self.patience / 2)

    def try_take(self) -> bool:
        """A slot at once, if one is free and nobody is waiting for it."""
        if self.held < self.limit and not self._waiters:
            self.held += 1
            _admitted.inc()
            return True
        return False

    async def take(self) -> bool:
        """A slot, waiting in line for it if there is room; False when refused (the line is
        full, or the wait ran out)."""
        if self.try_take():
            return True
        if len(self._waiters) >= self.max_waiting or self.patience <= 0:
            _shed_line_full.inc()
            return False
        waiter: Waiter = (asyncio.get_running_loop().create_future(), time.monotonic())
        self._waiters.append(waiter)
        _waiting.inc()
        try:
            async with asyncio.timeout(self.patience):
                await waiter[0]
        except TimeoutError:
            if self._give_up(waiter):
                return True  # handed a slot in the very instant the wait ran out
            _shed_waited.inc()
            return False
        except BaseException:  # cancelled in line: the request is gone
            if self._give_up(waiter):
                self.release()
            raise
        return True

    def release(self) -> None:
        """Give a slot back: to a waiter if any (see `standing`), else to the free ones."""
        newest_first = self.standing()
        while self._waiters:
            future, _ = self._waiters.pop() if newest_first else self._waiters.popleft()
            _waiting.dec()
            if not future.done():
                future.set_result(None)  # the slot changes hands; `held` stays the same
                return
        self.held -= 1
        _admitted.dec()

    def _give_up(self, waiter: Waiter) -> bool:
        """Leave the line; True if a slot was handed over meanwhile (it is the caller's)."""
        future = waiter[0]
        if future.done() and not future.cancelled():
            return True
        future.cancel()
        try:
            # Near the front, where waits run out first.
            self._waiters.remove(waiter)
        except ValueError:
            return False  # already taken off the line by `release`
        _waiting.dec()
        return False


def stream_paths(routes: Sequence[BaseRoute]) -> re.Pattern[str] | None:
    """One pattern matching the paths of every route here declared to answer text/event-stream.

    `routes` are plain routes with their whole paths (a router's own `.routes`), not an app's
    included routers: resolving those builds every route's dependencies ahead of its first
    request, half a second per app built.
    """
    patterns = [
        compile_path(path)[0].pattern
        for route in routes
        if (path := getattr(route, "path", None)) and _answers_a_stream(route)
    ]
    if not patterns:
        return None
    # Unnamed, since two routes may name a parameter alike ({org}), which one pattern cannot.
    unnamed = (NAMED_GROUP.sub("(?:", pattern) for pattern in patterns)
    return re.compile("|".join(f"(?:{pattern})" for pattern in unnamed))


def _answers_a_stream(route: BaseRoute) -> bool:
    response_class = getattr(route, "response_class", None)
    return getattr(response_class, "media_type", None) == STREAM_MEDIA_TYPE


class AdmissionMiddleware(HttpMiddleware):
    """Bound the requests in flight (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: HttpSettings,
        slots: Slots | None = None,
        stream_routes: Sequence[BaseRoute] = (),
        cors: dict[str, Any] | None = None,
        access_log: bool = True,
    ) -> None:
        super().__init__(app)
        # Shared with the fast path when given: its personal reads that make a round trip
        # take them too (platform/http/fast_path.py).
        self.slots = slots if slots is not None else Slots.of(settings)
        self.streams = stream_paths(stream_routes)
        # A browser script on an allowed origin may read the 503 and its Retry-After, as it
        # reads any other answer (the same class and options as the stack's CORS).
        self.refuse: ASGIApp = _refuse if cors is None else CorsMiddleware(_refuse, **cors)
        self.access_log = access_log
        self.shed_unlogged = 0
        self.shed_since = 0.0  # the first refusal not yet logged
        self.shed_logged_at = -SHED_LOG_SECONDS

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path in PROBE_PATHS or (self.streams is not None and self.streams.match(path)):
            await self.app(scope, receive, send)
            return
        if not self.slots.try_take():
            started = time.perf_counter()
            if not await self.slots.take():
                await self._refuse(scope, receive, send, started)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        status = 503

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]  # a CORS preflight is answered, not refused
            await send(message)

        await self.refuse(scope, receive, send_observed)
        if self.access_log:  # the access log sits below: the refusal is counted here
            _count(scope, status, time.perf_counter() - started)
        self._log_shed(scope)

    def _log_shed(self, scope: Scope) -> None:
        """A line per second of shedding, not per refusal: written for each, the line was two
        thirds of a refusal's CPU (decision 0060), spent when the worker has none to spare."""
        now = time.monotonic()
        if not self.shed_unlogged:
            self.shed_since = now
        self.shed_unlogged += 1
        if now - self.shed_logged_at < SHED_LOG_SECONDS:
            return
        log.warning(
            "requests shed",
            shed=self.shed_unlogged,
            over_seconds=round(now - self.shed_since, 3),
            # One of them, to find its client's report by the request id it was given.
            path=scope["path"],
            request_id=current_request_id(),
            in_flight=self.slots.held,
            waiting=self.slots.waiting(),
        )
        self.shed_unlogged, self.shed_logged_at = 0, now


def _count(scope: Scope, status: int, seconds: float) -> None:
    """The RED metrics of a refused request, as the access log counts any other."""
    method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
    HTTP_REQUESTS.labels(method, SHED_ROUTE, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, SHED_ROUTE).observe(seconds)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    overloaded = ServiceOverloaded(
        "This server is running as many requests as it serves promptly and none finished in "
        "time for this one; it did nothing. Retry after the time in Retry-After.",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )
    await domain_error_response(overloaded, scope["path"])(scope, receive, send)
