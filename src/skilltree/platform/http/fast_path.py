"""Cached public reads answered at the front of the middleware stack (decisions 0055, 0076).

A public roadmap's tree or topic, once in this process's local copies and trusted without a
round trip (platform/cache.py: with Redis, "Pushed invalidation"; without it, "In process
memory", where the cache is this process's own), is the same bytes for every anonymous reader. The
ordinary path still walks ten middleware layers, FastAPI's routing and its dependencies (a
database session, the viewer, the settings, the cache) to send them. This middleware, placed
just inside the proxy-headers middleware, in front of the application (front_door.py), answers
such a request itself, doing what the stack would do for it and reusing the stack's own parts
so the two cannot drift:

    request id         `RequestIdMiddleware`'s rules (a safe incoming id, or a new one)
    rate limit         the same limiter and budget; over the limit, the request goes down the
                       stack with its decision (`rate_limit.mark_decided`), which answers 429
    conditional        If-None-Match with our coding suffixes removed, weak comparison, GET only
    Accept-Encoding    `compression.choose_coding`, the same minimum size; the variants are
                       compressed once per local copy, not per response
    CORS               the app's own `CORSMiddleware` instance adds its headers and Vary
    security headers   `security_headers.add_security_headers`
    access log         the same line and metrics, under the route's template

The response's own headers come from the same `Representation.respond` the route calls. What
it does not answer goes down the stack untouched: any other method (HEAD is a 405 there), a
query string, credentials (a bad token must be a 401), a request body, or no trusted local
copy. tests/roadmaps/test_fast_path.py compares both paths' headers and bodies.

Personal reads (decision 0080). A signed-in caller's own ready answers (their progress on a
roadmap, who they are) are answered the same way when everything they depend on is in this
process and trusted: the caller, as the principal cache keeps their credential (by the rules
the application itself applies to a kept one: `accounts.dependencies.kept_sign_in`; a kept
browser session still asks its store, one round trip), and the answer's local copy. Each
`PersonalRead`'s `find` says what its route needs; anything it does not find sends the request
down the stack, which looks the caller up, refuses them, or computes the answer.
tests/progress/test_personal_reads.py compares both paths.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cachetools import LRUCache
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.cache import Key, LocalCopy
from skilltree.platform.http import conditional
from skilltree.platform.http.admission import Slots
from skilltree.platform.http.compression import (
    RememberedCodings,
    brotli_quality,
    compress,
    is_compressible,
    strip_codings,
    with_coding,
)
from skilltree.platform.http.credentials import Credentials, credentials_from, session_from
from skilltree.platform.http.middleware import (
    REQUEST_ID_NAME,
    HttpMiddleware,
    log_request,
    request_id_from,
)
from skilltree.platform.http.outages import is_outage
from skilltree.platform.http.rate_limit import (
    Decision,
    RateLimiter,
    StoreUnavailable,
    mark_decided,
)
from skilltree.platform.http.security_headers import add_security_headers
from skilltree.platform.observability.context import request_id_var
from skilltree.platform.state import Resources

# What a local copy remembers of its preparation for this path.
PREPARED = "fast_path"
# Request headers that send a request down the stack: a body. (Credentials are looked at by
# the kind of read: `_asked`.)
BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


@dataclass(frozen=True)
class CachedRead:
    """A route whose public answers the cache keeps: its template (as the access log names
    it), a pattern of its paths, and the cache key of a matched path."""

    route: str
    pattern: re.Pattern[str]
    key: Callable[[re.Match[str]], Key]


# What a personal read's `find` is given: the app's resources, the matched path, the request's
# credentials, and the request itself (what a representation may name of it: the due list's
# links name its URL). It answers with the cache's local copy, or with the bytes of a
# representation made from what the process keeps (the caller's account): the path then keeps
# what it derives from those bytes, as it does for a local copy.
FindPersonal = Callable[
    [Resources, re.Match[str], Credentials, Scope], Awaitable[LocalCopy | bytes | None]
]
# How many such representations the path keeps prepared.
MADE_COPIES = 1024


@dataclass(frozen=True)
class PersonalRead:
    """A route whose answer to a signed-in caller may be ready in this process: its template,
    a pattern of its paths, and `find`, which gives that caller's ready representation from
    what the process keeps, with no statement and no round trip, or None (down the stack)."""

    route: str
    pattern: re.Pattern[str]
    find: FindPersonal


@dataclass(frozen=True)
class Variant:
    """One ready response: status, headers as the route and the compression middleware would
    have set them, and the body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    # For a request without Origin, by whether it came over https: the headers once CORS and
    # the security headers have been through them (the same for every such request).
    finished: dict[bool, tuple[tuple[bytes, bytes], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    etag: str
    identity: Variant
    coded: dict[str, Variant]  # by coding; empty when the body is too small to compress
    not_modified: dict[str | None, Variant]  # by the coding of the validator the client sent
    # By an If-None-Match that is exactly one of the ETags sent (what a revalidating client
    # usually sends): the 304 without parsing the header.
    exact_not_modified: dict[bytes, Variant]


class Asked(NamedTuple):
    """What the request's headers ask of the answer (raw values; None when absent)."""

    if_none_match: bytes | None
    accept_encoding: bytes | None
    origin: bool
    request_id: bytes | None
    authorization: bytes | None
    cookie: bytes | None  # the first Cookie header: the only one the application reads


class Hit(NamedTuple):
    """A request this path answers: its route's template, the trusted local copy to answer
    with, what the request asks, and its credentials (None for a public read, which has none)."""

    route: str
    copy: LocalCopy
    asked: Asked
    credentials: Credentials | None


def prepare(value: bytes, minimum_size: int) -> Prepared:
    """Every response a cached representation can give, computed once."""
    representation = conditional.Representation.from_bytes(value)
    validators = representation.validators()
    response = Response(
        representation.body, 200, headers=validators, media_type=representation.media_type
    )
    headers = MutableHeaders(raw=list(response.raw_headers))
    compressible = is_compressible(headers.get("content-type", ""))
    if compressible:
        headers.add_vary_header("Accept-Encoding")
    body = representation.body
    coded: dict[str, Variant] = {}
    if compressible and len(body) >= minimum_size:
        for coding in ("br", "gzip"):
            # The quality the compression middleware gives this content type.
            compressed = compress(body, coding, brotli_quality(headers.get("content-type", "")))
            variant = MutableHeaders(raw=list(headers.raw))
            variant["content-encoding"] = coding
            variant["content-length"] = str(len(compressed))
            variant["etag"] = with_coding(representation.etag, coding)
            coded[coding] = Variant(200, tuple(variant.raw), compressed)
    not_modified: dict[str | None, Variant] = {}
    exact_not_modified: dict[bytes, Variant] = {}
    for seen in (None, "br", "gzip"):
        etag = representation.etag if seen is None else with_coding(representation.etag, seen)
        not_modified_headers = representation.not_modified_headers(validators | {"etag": etag})
        response = Response(status_code=304, headers=not_modified_headers)
        not_modified[seen] = Variant(304, tuple(response.raw_headers), b"")
        exact_not_modified[etag.encode("latin-1")] = not_modified[seen]
    identity = Variant(200, tuple(headers.raw), body)
    return Prepared(representation.etag, identity, coded, not_modified, exact_not_modified)


class FastPathMiddleware(HttpMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: tuple[CachedRead, ...],
        personal: tuple[PersonalRead, ...] = (),
        slots: Slots | None = None,
        cors: dict[str, Any],
        limiter: RateLimiter | None,
        access_log: bool,
        minimum_size: int,
        session_cookie: str,
    ) -> None:
        super().__init__(app)
        self.reads = reads
        self.personal = personal
        self.slots = slots
        # The same class and options as the stack's: its headers, added the same way.
        self.cors = CORSMiddleware(app, **cors)
        self.limiter = limiter
        self.access_log = access_log
        self.minimum_size = minimum_size
        self.session_cookie = session_cookie
        self.answered = 0  # requests this path answered itself
        self._codings = RememberedCodings()
        # Personal representations made from kept values, by their bytes (`FindPersonal`).
        self._made: LRUCache[bytes, LocalCopy] = LRUCache(maxsize=MADE_COPIES)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = await self._local_hit(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, copy, asked, credentials = found
        started = time.perf_counter()
        request_id = request_id_from(asked.request_id)
        request_token = request_id_var.set(request_id)
        try:
            decision: Decision | None = None
            if self.limiter is not None:
                policy = self.limiter.policy_for(scope)
                if policy is not None:
                    try:
                        decision = await self.limiter.decide(policy, scope, credentials)
                    except StoreUnavailable:
                        decision = None  # reads are let through, as in the stack
                    if decision is not None and not decision.allowed:
                        # The stack answers the 429 (with every header), counting nothing again.
                        mark_decided(scope, decision)
                        await self.app(scope, receive, send)
                        return
            prepared: Prepared | None = copy.derived.get(PREPARED)
            if prepared is None:
                prepared = copy.derived[PREPARED] = prepare(copy.value, self.minimum_size)
            variant = self._variant(asked, prepared)
            if asked.origin:
                start = await self._finish(variant, scope, Headers(scope=scope))
                raw: list[tuple[bytes, bytes]] = start["headers"]
            else:
                https = scope.get("scheme") == "https"
                finished = variant.finished.get(https)
                if finished is None:
                    finished_start = await self._finish(variant, scope, Headers())
                    finished = variant.finished[https] = tuple(finished_start["headers"])
                raw = list(finished)
                start = {"type": "http.response.start", "status": variant.status, "headers": raw}
            # Names the finished headers never carry: appended as the stack would add them.
            if decision is not None:
                raw.extend(decision.raw_headers())
            raw.append((REQUEST_ID_NAME, request_id.encode("latin-1")))
            self.answered += 1
            await send(start)
            await send({"type": "http.response.body", "body": variant.body, "more_body": False})
            if self.access_log:
                seconds = time.perf_counter() - started
                log_request(scope, route, variant.status, len(variant.body), seconds)
        finally:
            request_id_var.reset(request_token)

    async def _local_hit(self, scope: Scope) -> Hit | None:
        """What the path answers this request with, when it is one the path answers."""
        if scope["method"] != "GET" or scope.get("query_string"):
            return None
        path = scope["path"]
        for read in self.reads:
            match = read.pattern.fullmatch(path)
            if match is not None:
                return self._public_hit(scope, read, match)
        for personal in self.personal:
            match = personal.pattern.fullmatch(path)
            if match is not None:
                return await self._personal_hit(scope, personal, match)
        return None

    def _public_hit(self, scope: Scope, read: CachedRead, match: re.Match[str]) -> Hit | None:
        asked = self._asked(scope)
        # Credentials go down the stack: a bad token must be a 401, not the public answer.
        if asked is None or asked.authorization is not None or self._session(asked) is not None:
            return None
        resources = resources_in(scope)
        if resources is None:
            return None
        copy = resources.cache.local_entry(read.key(match))
        return None if copy is None else Hit(read.route, copy, asked, None)

    async def _personal_hit(
        self, scope: Scope, read: PersonalRead, match: re.Match[str]
    ) -> Hit | None:
        asked = self._asked(scope)
        if asked is None:
            return None
        credentials = self._credentials(asked)
        if credentials is None:  # no caller: the stack's 401
            return None
        resources = resources_in(scope)
        if resources is None:
            return None
        found = await self._find(read, resources, match, credentials, scope)
        if found is None:
            return None
        copy = self._copy_of(found) if isinstance(found, bytes) else found
        return Hit(read.route, copy, asked, credentials)

    async def _find(
        self,
        read: PersonalRead,
        resources: Resources,
        match: re.Match[str],
        credentials: Credentials,
        scope: Scope,
    ) -> LocalCopy | bytes | None:
        """`read.find`, within the application's bounds: a browser session is checked against
        its store (a round trip), so it takes one of admission control's slots as any request
        of the application does, and goes down the stack to wait in line (or be refused) when
        none is free; a store that cannot be reached sends the request down the stack too,
        which answers that as it answers any outage (503, decision 0051)."""
        slots = self.slots if credentials.session is not None else None
        if slots is not None and not slots.try_take():
            return None
        try:
            return await read.find(resources, match, credentials, scope)
        except Exception as error:
            if is_outage(error):
                return None
            raise
        finally:
            if slots is not None:
                slots.release()

    def _copy_of(self, value: bytes) -> LocalCopy:
        """A representation made from kept values, as a copy the path prepares once."""
        copy = self._made.get(value)
        if copy is None:
            copy = self._made[value] = LocalCopy(value, ttl_seconds=0)
        return copy

    def _credentials(self, asked: Asked) -> Credentials | None:
        return credentials_from(asked.authorization, asked.cookie, self.session_cookie)

    def _session(self, asked: Asked) -> str | None:
        return session_from(asked.cookie, self.session_cookie)

    def _asked(self, scope: Scope) -> Asked | None:
        """The request headers the answer depends on, in one pass; None when one of them
        sends the request down the stack (a body)."""
        if_none_match = accept_encoding = request_id = authorization = cookie = None
        origin = False
        for name, value in scope["headers"]:
            if name in BODY_HEADERS:
                return None
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
            elif name == b"origin":
                origin = True
            elif name == b"x-request-id" and request_id is None:
                request_id = value
            elif name == b"authorization":
                if authorization is not None:
                    return None  # two credentials: the stack decides what that means
                authorization = value
            elif name == b"cookie" and cookie is None:
                cookie = value
        return Asked(if_none_match, accept_encoding, origin, request_id, authorization, cookie)

    def _variant(self, asked: Asked, prepared: Prepared) -> Variant:
        """The response for this request's validators and codings."""
        if asked.if_none_match:
            # The client's own copy's ETag, as we sent it: no parsing needed.
            exact = prepared.exact_not_modified.get(asked.if_none_match)
            if exact is not None:
                return exact
            validators, coding = strip_codings(asked.if_none_match.decode("latin-1"))
            if conditional.none_match(validators, prepared.etag):
                return prepared.not_modified[coding]
        coding = self._codings.choose(asked.accept_encoding)
        return prepared.coded.get(coding, prepared.identity) if coding else prepared.identity

    async def _finish(self, variant: Variant, scope: Scope, request_headers: Headers) -> Message:
        """The response start once CORS (the stack's own class) and the security headers have
        been through it, as they would in the stack."""
        sent: list[Message] = []

        async def keep(message: Message) -> None:
            sent.append(message)

        start: Message = {
            "type": "http.response.start",
            "status": variant.status,
            "headers": list(variant.headers),
        }
        await self.cors.send(start, keep, request_headers)
        add_security_headers(MutableHeaders(scope=sent[0]), scope)
        return sent[0]


def resources_in(scope: Scope) -> Resources | None:
    """The app's resources, once its lifespan has created them."""
    app = scope.get("app")
    resources = getattr(getattr(app, "state", None), "resources", None)
    return resources if isinstance(resources, Resources) else None
