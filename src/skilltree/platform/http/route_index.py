"""Routing a request without trying every included router (decision 0074).

FastAPI (0.16x) keeps each `include_router` as one lazy branch: the app's router asks every branch
in turn whether it matches, each branch tries each of its routes, and the branch that matched is
asked again when it handles the request. With ~35 branches that is most of what routing costs.

`RouteIndex` sits in place of the app router's own dispatch (`router.middleware_stack`). It
flattens the routes FastAPI would try, in FastAPI's order, and files each under the methods it
answers and the literal first two segments of its path. A request tries only the routes filed
under its method and segments, in the same order, with FastAPI's own match of each; the first full
match is handled exactly as FastAPI's router hands it on (the same scope keys, the same
`handle`). A path that matches only in its other slash form is redirected there as FastAPI
would, but with a relative Location (`_other_slash_form`). Anything else - no full match (404,
405), a websocket, lifespan, or an app whose routes it does not model - goes to FastAPI's
router, so every other answer is FastAPI's own. A branch's per-inclusion twins of its routes, which
FastAPI builds the first time the branch is tried, are asked for only when a request may match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from fastapi import FastAPI
from fastapi.routing import (
    _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
    _FASTAPI_INCLUDED_ROUTER_KEY,
    _FASTAPI_SCOPE_KEY,
    APIRoute,
    APIRouter,
    _EffectiveRouteContext,
    _FrontendRouteGroup,
    _IncludedRouter,
)
from fastapi.telemetry._api import _route_selected
from starlette import routing
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The key of the routes a segment no route names may match (request segments are strings).
_ANY = None
# FastAPI counts each router's route changes here (one attribute read per router, in C).
_routes_version = attrgetter("_routes_version")
# Methods no route names: only routes that answer any method (mounts) can match them.
_OTHER_METHOD = "\x00"
BACKSLASH = b"\\"


@dataclass(frozen=True, slots=True)
class Leaf:
    """One route FastAPI's router would try, where it sits and what it answers."""

    position: int
    # The route as the app's router, or its branch's router, holds it.
    route: BaseRoute
    # The branch it was included through, and its place among the branch's routes (whose
    # per-inclusion twins FastAPI builds the first time the branch is tried).
    included: _IncludedRouter | None
    index_in_branch: int
    # FastAPI's scope holds its own dict once any branch before this route was tried.
    after_a_branch: bool
    methods: frozenset[str] | None
    segments: tuple[str | None, str | None]


@dataclass(frozen=True, slots=True)
class Found:
    """A full match: the leaf, its child scope, and what FastAPI would hand the request to."""

    leaf: Leaf
    child_scope: Scope
    route: BaseRoute
    context: _EffectiveRouteContext | None


# method -> first segment -> second segment -> the routes a request there may match, in order.
_Table = dict[str, dict[str | None, dict[str | None, tuple[Leaf, ...]]]]


class Unmodelled(Exception):
    """The app has a route shape the index does not reproduce; FastAPI's router does it all."""


class RouteIndex:
    """The app router's dispatch: an index in front, FastAPI's router behind."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.fallback: ASGIApp = router.app
        self._count = 0
        self._versions: tuple[int, ...] = ()
        self._routers: tuple[APIRouter, ...] = ()
        self._table: _Table | None = None
        self._modelled = True
        # Each branch's per-inclusion twins, by the branch's id (branches are not hashable).
        self._twins: dict[int, list[Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        found = self.find(scope)
        if found is None:
            if scope["method"] == "HEAD" and await self._head_as_get(scope, receive, send):
                return
            if await self._other_slash_form(scope, send):
                return
            await self.fallback(scope, receive, send)
            return
        await _hand_on(self.router, found, scope, receive, send)

    async def _other_slash_form(self, scope: Scope, send: Send) -> bool:
        """A path that a route matches once its trailing slash is removed (or added),
        redirected there (307, as FastAPI's router does) with a relative Location: FastAPI's
        is absolute, built from the request's Host header, so whatever Host was sent came
        back. The path stays as the client encoded it. False when the other form matches
        nothing, or would start with a slash and a slash or backslash (which a browser reads
        as another host's address): FastAPI's router answers those."""
        if not self.router.redirect_slashes:
            return False
        path: str = scope["path"]
        if path == "/":
            return False
        raw: bytes = scope.get("raw_path") or path.encode()
        if path.endswith("/"):
            other_path, other_raw = path[:-1], raw[:-1]
        else:
            other_path, other_raw = path + "/", raw + b"/"
        if self.find({**scope, "path": other_path}) is None:
            return False
        # A server given a root path puts it in `path` but not always in `raw_path`.
        root = scope.get("root_path", "").encode()
        location = other_raw if other_raw.startswith(root) else root + other_raw
        if location[:2] in (b"//", b"/" + BACKSLASH):
            return False
        if scope.get("query_string"):
            location += b"?" + scope["query_string"]
        await send({"type": "http.response.start", "status": 307,
                    "headers": [(b"location", location), (b"content-length", b"0")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})
        return True

    async def _head_as_get(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """A HEAD no route answers, answered as its GET without the body: a server must
        support HEAD wherever it supports GET (RFC 9110 §9.1), and FastAPI's routes answer
        only the methods they name. The route sees a GET; the layers outside see the HEAD
        and an empty body (so nothing is compressed for it). False when no GET route matches
        either (FastAPI's router then answers its 404 or 405)."""
        as_get = {**scope, "method": "GET"}
        found = self.find(as_get)
        if found is None:
            return False
        try:
            await _hand_on(self.router, found, as_get, receive, _without_body(send))
        finally:
            # What the access log and the metrics name the request by.
            scope["route"] = as_get.get("route")
        return True

    def find(self, scope: Scope) -> Found | None:
        """The route FastAPI's router would pick with a full match; None when it would not
        pick one with a full match (or the index cannot tell)."""
        table = self._current_table()
        if table is None:
            return None
        by_first = table.get(scope["method"])
        if by_first is None:
            by_first = table[_OTHER_METHOD]
        parts = get_route_path(scope).split("/", 3)
        by_second = by_first.get(parts[1]) if len(parts) > 1 else None
        if by_second is None:
            by_second = by_first[_ANY]
        leaves = by_second.get(parts[2]) if len(parts) > 2 else None
        if leaves is None:
            leaves = by_second[_ANY]
        for leaf in leaves:
            if leaf.included is None:
                match, child_scope = leaf.route.matches(scope)
                if match is Match.FULL:
                    return Found(leaf, child_scope, leaf.route, None)
                continue
            context = self._twin(leaf)
            if context is None:
                return None  # not the twin the index expected: FastAPI's router decides
            if isinstance(leaf.route, APIRoute):
                # What FastAPI asks of an APIRoute of a branch: its twin's match.
                match, child_scope = context.matches(scope)
                if match is Match.FULL:
                    child_scope["route"] = leaf.route
                    return Found(leaf, child_scope, leaf.route, context)
                continue
            route = context.starlette_route
            if route is None:
                return None
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return Found(leaf, child_scope, route, context)
        return None

    def leaves(self) -> tuple[Leaf, ...]:
        """Every route the index tries, in FastAPI's order (empty when it does not model the
        app's routes)."""
        try:
            return tuple(_flatten(self.router.routes))
        except Unmodelled:
            return ()

    def _twin(self, leaf: Leaf) -> _EffectiveRouteContext | None:
        branch = leaf.included
        assert branch is not None
        twins = self._twins.get(id(branch))
        if twins is None:
            # Built by FastAPI when first needed, as its own router builds them.
            twins = self._twins[id(branch)] = branch.effective_candidates()
        if leaf.index_in_branch >= len(twins):
            return None
        twin = twins[leaf.index_in_branch]
        if not isinstance(twin, _EffectiveRouteContext) or twin.original_route is not leaf.route:
            return None
        return twin

    def _current_table(self) -> _Table | None:
        # Routes added or removed after the table was built (FastAPI counts such changes on
        # every router) make it stale: it is rebuilt, as FastAPI rebuilds its branches.
        if self._table is None or self._stale():
            self._build()
        return self._table if self._modelled else None

    def _stale(self) -> bool:
        return len(self.router.routes) != self._count or (
            tuple(map(_routes_version, self._routers)) != self._versions
        )

    def _build(self) -> None:
        routers = [self.router]
        routers.extend(
            route.original_router
            for route in self.router.routes
            if isinstance(route, _IncludedRouter)
        )
        self._count = len(self.router.routes)
        self._routers = tuple(routers)
        self._versions = tuple(map(_routes_version, routers))
        self._twins = {}
        try:
            leaves = tuple(_flatten(self.router.routes))
        except Unmodelled:
            self._modelled, self._table = False, {}
            return
        self._modelled = True
        self._table = _table_of(leaves)


def install_route_index(app: FastAPI) -> RouteIndex | None:
    """Put the index in front of the app router's dispatch, unless the router has middleware of
    its own there (FastAPI's app router has none), which must keep running first."""
    if app.router.middleware_stack != app.router.app:
        return None
    index = RouteIndex(app.router)
    app.router.middleware_stack = index
    return index


def _flatten(routes: Iterable[BaseRoute]) -> Iterable[Leaf]:
    position = 0
    after_a_branch = False
    for route in routes:
        if isinstance(route, _IncludedRouter):
            for index, original in enumerate(route.original_router.routes):
                yield _included_leaf(position, route, index, original)
                position += 1
            after_a_branch = True
            continue
        yield _top_level_leaf(position, route, after_a_branch)
        position += 1


def _included_leaf(position: int, branch: _IncludedRouter, index: int, route: BaseRoute) -> Leaf:
    """Filed by what its twin will answer, read from the route and the branch's prefix without
    building the twin: in the order `_IncludedRouter._build_effective_context` tells routes
    apart, and only for the kinds it builds a twin of (one that it skips, or a router included
    in a branch, would shift the branch's twins)."""
    path = branch.include_context.path_for(route) if hasattr(route, "path") else ""
    methods: frozenset[str] | None
    if isinstance(route, APIRoute):
        methods = frozenset(method.upper() for method in route.methods) if route.methods else None
    elif isinstance(route, _FrontendRouteGroup):
        raise Unmodelled("a frontend route group in a branch")
    elif isinstance(route, routing.Route | routing.WebSocketRoute):
        methods = _methods_of(route)
    elif isinstance(route, routing.Mount):
        methods, path = None, path.rstrip("/") + "/{path}"
    else:
        raise Unmodelled(f"an included {type(route).__name__}")
    return Leaf(
        position=position,
        route=route,
        included=branch,
        index_in_branch=index,
        after_a_branch=True,
        methods=methods,
        segments=_segments(path),
    )


def _top_level_leaf(position: int, route: BaseRoute, after_a_branch: bool) -> Leaf:
    if not isinstance(route, routing.Route | routing.WebSocketRoute | routing.Mount):
        raise Unmodelled(f"a top-level {type(route).__name__}")
    return Leaf(
        position=position,
        route=route,
        included=None,
        index_in_branch=-1,
        after_a_branch=after_a_branch,
        methods=_methods_of(route),
        segments=_segments(route.path_format),
    )


def _methods_of(route: BaseRoute) -> frozenset[str] | None:
    if isinstance(route, routing.Route):
        # A route without methods answers any (Starlette's `Route` makes that GET and HEAD).
        return frozenset(route.methods) if route.methods else None
    if isinstance(route, routing.WebSocketRoute):
        return frozenset()  # never an HTTP request's
    return None


def _segments(path_format: str) -> tuple[str | None, str | None]:
    """The literal first two segments a matching path must have; None where any will do (a
    parameter there, or a path that ends before it)."""
    parts = path_format.split("/", 3)
    first = parts[1] if len(parts) > 1 and "{" not in parts[1] else None
    if first is None or len(parts) < 3 or "{" in parts[2]:
        return first, None
    return first, parts[2]


def _table_of(leaves: tuple[Leaf, ...]) -> _Table:
    """method -> first segment -> second segment -> the leaves a request there may match, in
    order; `_ANY` holds those for a segment no route names."""
    named_methods = {method for leaf in leaves for method in leaf.methods or ()}
    table: _Table = {}
    for method in (*named_methods, _OTHER_METHOD):
        answering = [leaf for leaf in leaves if leaf.methods is None or method in leaf.methods]
        firsts = {leaf.segments[0] for leaf in answering} - {None}
        by_first: dict[str | None, dict[str | None, tuple[Leaf, ...]]] = {}
        for first in (*firsts, _ANY):
            under_first = [leaf for leaf in answering if leaf.segments[0] in (None, first)]
            seconds = {leaf.segments[1] for leaf in under_first if leaf.segments[0] == first}
            by_first[first] = {
                second: tuple(leaf for leaf in under_first if leaf.segments[1] in (None, second))
                for second in (*(seconds - {None}), _ANY)
            }
        table[method] = by_first
    return table


async def _hand_on(
    router: APIRouter, found: Found, scope: Scope, receive: Receive, send: Send
) -> None:
    """What `APIRouter.app` and `_IncludedRouter._handle_selected` do with a full match."""
    leaf, route, context = found.leaf, found.route, found.context
    if "router" not in scope:
        scope["router"] = router
    if leaf.after_a_branch:
        fastapi_scope: dict[str, Any] = scope.setdefault(_FASTAPI_SCOPE_KEY, {})
    if leaf.included is None or context is None:
        scope.update(found.child_scope)
        path = getattr(route, "path_format", None)
        _route_selected(scope=scope, path=path, mount=isinstance(route, routing.Mount))
        await route.handle(scope, receive, send)
        return
    fastapi_scope[_FASTAPI_INCLUDED_ROUTER_KEY] = leaf.included
    scope.update(found.child_scope)
    path = getattr(context.starlette_route, "path_format", None) or context.path_format
    _route_selected(scope=scope, path=path, mount=isinstance(route, routing.Mount))
    fastapi_scope[_FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = context
    if isinstance(leaf.route, APIRoute):
        scope["route"] = leaf.route
        await leaf.route.handle(scope, receive, send)
        return
    await route.handle(scope, receive, send)


def _without_body(send: Send) -> Send:
    """`send` for a HEAD answered as a GET: the response's start as it is, then an empty body
    in place of the GET's (however many parts the GET sends)."""
    ended = False

    async def send_head(message: Message) -> None:
        nonlocal ended
        if message["type"] != "http.response.body":
            await send(message)
        elif not ended:
            ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return send_head
