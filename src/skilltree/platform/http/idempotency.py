"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a retried POST runs once.

A client that sends `Idempotency-Key: <unique value>` with a creating POST may safely retry it
after a timeout or a dropped connection:

    first request          claimed, executed; a 2xx response is stored for the TTL (24 h)
    same key, same request the stored response, replayed, with `Idempotency-Replayed: true`
    same key, other request 422: a key names one request (method, path, credential, body)
    while the first runs   409, with Retry-After: the outcome is not known yet

Keys are scoped per credential — a browser session, an API client's token family, an API key —
never per user: a response one credential received (a new API key's secret, a webhook's signing
secret) is never shown to another, even of the same person, whatever rights each has.

A replay never skips authorisation. Before the stored response goes out, the route is rehearsed:
run in full, with every dependency and every check in its services, in units of work that roll
back (platform/db.py, `rehearsal`). When that run is refused (401, 403, 404: the credential
ended, a scope is missing, a role was taken away, the resource is no longer visible) the refusal
is the answer; otherwise the stored response is, and nothing the rehearsal did is kept.

A route opts in with one declaration, `dependencies=[IDEMPOTENT]`, which documents the header in
OpenAPI — and IdempotencyMiddleware guards exactly the POST routes that declare it.

The key is claimed in its own short transaction before the route runs, with a short lease
(LEASE) that a task renews while the request runs. The response is stored in the same
transaction as the route's work, and sent only once that has committed: the work and the
response it answered are kept together or not at all. So a process that dies mid-request leaves
either nothing but the claim — its lease runs out, and a retry after that runs the request again
— or a stored response that a retry replays. Failed requests (any non-2xx) rolled back their
work: the key is released, and a retry runs again. Responses are encrypted at rest: some carry
secrets (a new API key is shown once).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.clock import Clock
from skilltree.platform.db import KEEP_CHANGES, Database, rehearsal, shared_with_request
from skilltree.platform.errors import Conflict, DomainError, UnprocessableContent
from skilltree.platform.http.middleware import HttpMiddleware, first_raw_header
from skilltree.platform.http.problems import domain_error_response
from skilltree.platform.idempotency_records import MAX_KEY_LENGTH, IdempotencyRecord
from skilltree.platform.state import Resources, resources_of

HEADER = "idempotency-key"
HEADER_NAME = HEADER.encode("latin-1")
# Printable ASCII (space to tilde), as the OpenAPI document states it.
KEY_PATTERN = r"^[\x20-\x7E]+$"
REPLAYED_HEADER = "idempotency-replayed"
# Headers that belong to one exchange, not to the stored outcome.
NOT_REPLAYED = frozenset({"set-cookie", "content-length", "date", "x-request-id"})

# How long a claim holds while its request runs, renewed every third of it: a retry after a
# request that died (a killed process) waits at most this long, then runs again. The default of
# `SKILLTREE_HTTP_IDEMPOTENCY_LEASE_SECONDS`.
LEASE = timedelta(seconds=30)

# Statuses of a rehearsal that are answered instead of the stored response: the caller may no
# longer do what the stored response says was done.
REFUSALS = frozenset({401, 403, 404})

# Which credential is calling, as a stable string ("api-key:7"); raises (401) when there is none.
CallerResolver = Callable[[Request, AsyncSession], Awaitable[str]]


class InvalidIdempotencyKey(DomainError):
    type_slug = "invalid-idempotency-key"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyReused(UnprocessableContent):
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key reused for another request"


class IdempotencyKeyInFlight(Conflict):
    type_slug = "idempotency-key-in-flight"
    title = "Request with this Idempotency-Key still in progress"

    def __init__(self) -> None:
        super().__init__(
            "The first request with this Idempotency-Key has not finished; retry shortly."
        )
        self.headers["retry-after"] = "1"


async def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique value (a UUID): retrying with the same key and body replays "
            "the first response instead of creating again. 1 to 255 printable ASCII characters "
            "(400 otherwise).",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            # What _validate accepts; the middleware answers 400 before this is checked.
            pattern=KEY_PATTERN,
        ),
    ] = None,
) -> str | None:
    return idempotency_key


# The one declaration a creating route needs: dependencies=[IDEMPOTENT].
IDEMPOTENT = Depends(idempotency_key_header)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes

    def replay(self) -> Response:
        response = self.as_response()
        response.headers[REPLAYED_HEADER] = "true"
        return response

    def as_response(self) -> Response:
        response = Response(self.body, self.status_code)
        for name, value in self.headers:
            if name != "content-length":
                response.headers.append(name, value)
        return response


def fingerprint(
    method: str, path: str, query: str, caller: str, content_type: str, body: bytes
) -> str:
    parts = [method, path, query, caller, content_type, hashlib.sha256(body).hexdigest()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


async def claim(
    session: AsyncSession, *, caller: str, key: str, fingerprint: str, now: datetime, ttl: timedelta
) -> IdempotencyRecord | None:
    """Claim the key for this request (None), or return the earlier request's record.

    The unique (caller, key) constraint arbitrates between concurrent first requests.
    """
    existing = await _find(session, caller, key)
    if existing is not None and existing.expires_at <= now:
        await session.delete(existing)  # an expired key is free again
        await session.flush()
        existing = None
    if existing is not None:
        return existing
    record = IdempotencyRecord(
        caller=caller,
        key=key,
        fingerprint=fingerprint,
        created_at=now,
        expires_at=now + ttl,
    )
    try:
        async with session.begin_nested():
            session.add(record)
    except IntegrityError:  # another request claimed it between our read and our insert
        return await _find(session, caller, key)
    return None


async def _find(session: AsyncSession, caller: str, key: str) -> IdempotencyRecord | None:
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.caller == caller, IdempotencyRecord.key == key
    )
    return (await session.execute(query)).scalar_one_or_none()


async def delete_expired_keys(session: AsyncSession, now: datetime) -> int:
    """Remove every key whose TTL has passed; returns how many."""
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired_keys(database: Database, clock: Clock) -> int:
    """The scheduled job (hourly is plenty): delete expired keys in a unit of work of its own."""
    async with database.unit_of_work() as session:
        return await delete_expired_keys(session, clock.now())


def _lease(resources: Resources) -> timedelta:
    return timedelta(seconds=resources.settings.http.idempotency_lease_seconds)


class IdempotencyMiddleware(HttpMiddleware):
    """Claim, run, store (2xx) or release; replay on retries — for the routes that opted in.

    Pure ASGI, innermost: it must claim before the route opens its unit of work and store after
    that work has committed, which no dependency can do. The routes that opted in are the POST
    routes that declare IDEMPOTENT, found once, on the first request that sends a key.
    """

    def __init__(self, app: ASGIApp, identify: CallerResolver) -> None:
        super().__init__(app)
        self.identify = identify
        self._guarded: list[re.Pattern[str]] | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only a guarded POST with a key is kept: the others pass without a Request built.
        raw_key = (
            first_raw_header(scope["headers"], HEADER_NAME) if scope["method"] == "POST" else None
        )
        key = None if raw_key is None else raw_key.decode("latin-1")
        if key is None or not self._is_guarded(scope):
            await self.app(scope, receive, send)
            return
        try:
            await self._guard(Request(scope, receive), key, scope, receive, send)
        except DomainError as error:  # raised before the route ran: no handler will render it
            await domain_error_response(error, scope["path"])(scope, receive, send)

    def _is_guarded(self, scope: Scope) -> bool:
        if scope["method"] != "POST":
            return False
        if self._guarded is None:
            self._guarded = [route.path_regex for route in idempotent_routes(scope["app"].routes)]
        return any(pattern.match(scope["path"]) for pattern in self._guarded)

    async def _guard(
        self, request: Request, key: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        _validate(key)
        body = await request.body()
        resources = resources_of(request)
        outcome = await self._claim(request, resources, key, body)
        if isinstance(outcome, StoredResponse):
            await self._replay(outcome, body, scope, receive, send)
            return
        caller = outcome
        renewal = asyncio.create_task(self._renew(resources, caller, key))
        try:
            captured = await self._run(resources, caller, key, body, scope, receive)
        except BaseException:
            await self._release(resources, caller, key)
            raise
        finally:
            renewal.cancel()
        if not captured.succeeded:
            await self._release(resources, caller, key)
        await captured.as_stored().as_response()(scope, receive, send)

    async def _run(
        self,
        resources: Resources,
        caller: str,
        key: str,
        body: bytes,
        scope: Scope,
        receive: Receive,
    ) -> _CapturedResponse:
        """Run the route in a unit of work that also stores its response (when it succeeded),
        and commit both before anything is sent."""
        captured = _CapturedResponse()
        try:
            async with resources.database.unit_of_work() as session:
                with shared_with_request(session):
                    await self.app(scope, _replaying(body, receive), captured.keep_only())
                if not session.info.pop(KEEP_CHANGES, True):
                    raise _RollBack
                if captured.succeeded:
                    await self._store(session, resources, caller, key, captured)
        except _RollBack:
            pass
        return captured

    async def _renew(self, resources: Resources, caller: str, key: str) -> None:
        """Extend the claim's lease while its request runs; never a finished key's TTL."""
        lease = _lease(resources)
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            async with resources.database.unit_of_work() as session:
                await session.execute(
                    update(IdempotencyRecord)
                    .where(
                        IdempotencyRecord.caller == caller,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.status_code.is_(None),
                    )
                    .values(expires_at=resources.clock.now() + lease)
                )

    async def _replay(
        self, stored: StoredResponse, body: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The stored response, once a rehearsal of the route shows the caller may still do it."""
        rehearsed = _CapturedResponse()
        with rehearsal():
            await self.app(scope, _replaying(body, receive), rehearsed.keep_only())
        if rehearsed.status_code in REFUSALS:
            refusal = StoredResponse(rehearsed.status_code, rehearsed.headers, rehearsed.body)
            await refusal.as_response()(scope, receive, send)
            return
        await stored.replay()(scope, receive, send)

    async def _claim(
        self, request: Request, resources: Resources, key: str, body: bytes
    ) -> StoredResponse | str:
        now = resources.clock.now()
        async with resources.database.unit_of_work() as session:
            caller = await self.identify(request, session)
            request_fingerprint = fingerprint(
                request.method,
                request.url.path,
                request.url.query,
                caller,
                request.headers.get("content-type", ""),
                body,
            )
            earlier = await claim(
                session,
                caller=caller,
                key=key,
                fingerprint=request_fingerprint,
                now=now,
                ttl=_lease(resources),
            )
        if earlier is None:
            return caller
        if earlier.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for a different request; use a new key.",
                key=key,
            )
        if earlier.status_code is None or earlier.body is None:
            raise IdempotencyKeyInFlight()
        box = resources.secret_box
        return StoredResponse(
            earlier.status_code,
            [(name, value) for name, value in earlier.headers or []],
            box.decrypt_bytes(earlier.body),
        )

    async def _store(
        self,
        session: AsyncSession,
        resources: Resources,
        caller: str,
        key: str,
        captured: _CapturedResponse,
    ) -> None:
        record = await _find(session, caller, key)
        if record is None:  # pragma: no cover - cleaned up while running; nothing to store
            return
        record.status_code = captured.status_code
        record.headers = [
            [name, value] for name, value in captured.headers if name not in NOT_REPLAYED
        ]
        record.body = resources.secret_box.encrypt_bytes(captured.body)
        ttl = timedelta(hours=resources.settings.http.idempotency_ttl_hours)
        record.expires_at = resources.clock.now() + ttl

    async def _release(self, resources: Resources, caller: str, key: str) -> None:
        async with resources.database.unit_of_work() as session:
            record = await _find(session, caller, key)
            if record is not None and record.status_code is None:
                await session.delete(record)


def _validate(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the route, then defers to the server."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _RollBack(Exception):
    """The route decided its changes are not to be kept (it failed)."""


class _CapturedResponse:
    """Forwards the response to the client and keeps a copy to store."""

    def __init__(self) -> None:
        self.status_code = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def as_stored(self) -> StoredResponse:
        return StoredResponse(self.status_code, self.headers, self.body)

    def keep_only(self) -> Send:
        """A send that keeps the response and sends nothing."""

        async def discard(message: Message) -> None:
            pass

        return self.wrap(discard)

    def wrap(self, send: Send) -> Send:
        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status_code = message["status"]
                self.headers = [
                    (name.decode("latin-1").lower(), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                self.chunks.append(message.get("body", b""))
            await send(message)

        return capture


def idempotent_routes(routes: Sequence[BaseRoute]) -> list[RouteContext]:
    """The POST routes that declare IDEMPOTENT, with the paths the app serves them at.

    Read from the routes' dependencies rather than from the OpenAPI document, which lists the
    same routes (the header is documented because of that declaration): the document weighs
    about 10 MB in memory, and a server that never serves it should not build it.
    """
    return [
        route
        for route in iter_route_contexts(routes)
        if isinstance(route.original_route, APIRoute)
        and "POST" in (route.methods or ())
        and _declares_idempotency_key(route.dependant)
    ]


def _declares_idempotency_key(dependant: Dependant) -> bool:
    """Whether IDEMPOTENT is among the dependencies, or among theirs (as OpenAPI would see it)."""
    return any(
        dependency.call is idempotency_key_header or _declares_idempotency_key(dependency)
        for dependency in dependant.dependencies
    )
