"""The route index picks the route FastAPI's router would, and hands it on the same way."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.routing import _IncludedRouter
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route

from skilltree.accounts.router import router as accounts_router
from skilltree.app import create_app
from skilltree.platform.config import Settings
from skilltree.platform.http.route_index import RouteIndex, install_route_index

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND")
PARAMETER = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def fastapis_choice(app: FastAPI, scope: dict[str, Any]) -> tuple[object, object, Any] | None:
    """The route FastAPI's own router picks with a full match: its loop over the app's routes,
    and the branch's own `_match`."""
    for route in app.router.routes:
        match, child_scope = route.matches(dict(scope))
        if match is not Match.FULL:
            continue
        if isinstance(route, _IncludedRouter):
            _, child_scope, chosen, context = route._match(dict(scope))
            return chosen, context, child_scope
        return route, None, child_scope
    return None


def index_choice(index: RouteIndex, scope: dict[str, Any]) -> tuple[object, object, Any] | None:
    found = index.find(dict(scope))
    if found is None:
        return None
    return found.route, found.context, found.child_scope


def sample_paths(path_format: str) -> Iterator[str]:
    """A path the route matches, and near misses a router must tell apart from it."""

    def value(match: re.Match[str]) -> str:
        return {"path": "a/b.txt", "int": "7"}.get(match.group(2) or "", "x1")

    path = PARAMETER.sub(value, path_format)
    yield path
    yield path.rstrip("/") + "/"
    yield path + "/extra"
    yield "/nothing" + path
    yield path.rsplit("/", 1)[0] or "/"


def http_scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }


def test_the_index_picks_fastapis_route_for_every_route_of_the_app() -> None:
    app = create_app(Settings())
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    leaves = index.leaves()
    # Every route FastAPI tries is in the index (none left to FastAPI's router alone).
    assert len(leaves) == sum(
        len(route.effective_candidates()) if isinstance(route, _IncludedRouter) else 1
        for route in app.router.routes
    )
    paths = {
        getattr(route, "path_format", "")
        for branch in app.router.routes
        for route in (
            branch.effective_candidates() if isinstance(branch, _IncludedRouter) else [branch]
        )
    } | {"/", "/v1", "/v1/"}
    compared = picked = 0
    for path_format in sorted(paths):
        for path in sample_paths(path_format):
            for method in METHODS:
                scope = http_scope(method, path)
                ours, theirs = index_choice(index, scope), fastapis_choice(app, scope)
                assert ours == theirs, (method, path)
                compared += 1
                picked += ours is not None
    assert picked > 200
    assert compared > picked


async def test_a_request_makes_fastapi_build_only_the_branches_it_may_match() -> None:
    """FastAPI builds a branch's per-inclusion routes the first time the branch is tried (a
    second and more for all of skilltree's): the index asks for them as lazily."""
    app = create_app(Settings())
    branches = [route for route in app.router.routes if isinstance(route, _IncludedRouter)]

    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    found = index.find(http_scope("GET", "/v1/me/sessions"))

    assert found is not None
    assert found.route.path == "/v1/me/sessions"  # type: ignore[attr-defined]
    built = [branch for branch in branches if branch._effective_candidates_version is not None]
    assert [branch.original_router for branch in built] == [accounts_router]


async def test_the_index_follows_routes_added_after_it_was_built() -> None:
    app = FastAPI()
    early, late = APIRouter(), APIRouter()

    @early.get("/things/{name}")
    async def a_thing(name: str) -> dict[str, str]:
        return {"thing": name}

    app.include_router(early)
    app.include_router(late)
    index = install_route_index(app)
    assert index is not None
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")
    assert (await client.get("/things/cup")).json() == {"thing": "cup"}

    @early.get("/things/special/{name}")
    async def special(name: str) -> dict[str, str]:
        return {"special": name}

    @app.get("/first")
    async def first() -> dict[str, bool]:
        return {"first": True}

    assert (await client.get("/things/special/cup")).json() == {"special": "cup"}
    assert (await client.get("/first")).json() == {"first": True}
    app.router.routes.pop()
    assert (await client.get("/first")).status_code == 404


def build_app(with_index: bool, seen: list[dict[str, Any]]) -> FastAPI:
    """An app with each shape of route skilltree's has: included routers with and without a
    prefix, route- and router-level dependencies, path parameters of several types, two routes
    on one path with different methods, a path two routers declare, a mount, a plain Starlette
    route, websockets, and FastAPI's own documentation routes."""
    app = FastAPI()

    def record(request: Request) -> None:
        fastapi_scope = request.scope.get("fastapi", {})
        seen.append(
            {
                "route": getattr(request.scope.get("route"), "path", None),
                "path_params": request.scope.get("path_params"),
                "endpoint": getattr(request.scope.get("endpoint"), "__name__", None),
                "fastapi": sorted(fastapi_scope),
                "context_path": getattr(
                    fastapi_scope.get("effective_route_context"), "path_format", None
                ),
            }
        )

    async def header_dependency(request: Request) -> None:
        record(request)

    items = APIRouter(prefix="/v1/items", dependencies=[Depends(header_dependency)])

    @items.get("/{item_id:int}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @items.put("/{item_id:int}")
    async def replace_item(item_id: int) -> dict[str, Any]:
        return {"replaced": item_id}

    @items.get("/{name}")
    async def read_named(name: str) -> dict[str, str]:
        return {"named": name}

    @items.get("/files/{key:path}")
    async def read_file(key: str) -> dict[str, str]:
        return {"file": key}

    shadow = APIRouter(prefix="/v1/items")

    @shadow.get("/shadowed/{name}", dependencies=[Depends(header_dependency)])
    async def shadowed(name: str) -> dict[str, str]:
        return {"shadowed": name}

    me = APIRouter()

    @me.get("/v1/me")
    async def who(request: Request) -> dict[str, str]:
        record(request)
        return {"me": "yes"}

    @me.delete("/v1/me")
    async def erase() -> dict[str, str]:
        return {"erased": "yes"}

    @me.get("/")
    async def home(request: Request) -> dict[str, str]:
        record(request)
        return {"home": "yes"}

    @me.websocket("/v1/socket")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"plain {request.path_params}")

    plain_router = APIRouter()
    plain_router.routes.append(Route("/plain/{x}", plain, methods=["GET"]))
    app.router.routes.append(Mount("/static", app=PlainTextResponse("mounted")))
    app.include_router(items)
    app.include_router(shadow)
    app.include_router(me)
    app.include_router(plain_router)

    @app.get("/late/{x}")
    async def late(x: str, request: Request) -> dict[str, str]:
        record(request)
        return {"late": x}

    if with_index:
        install_route_index(app)
    return app


REQUESTS = [
    ("GET", "/v1/items/7"),
    ("PUT", "/v1/items/7"),
    ("POST", "/v1/items/7"),
    ("GET", "/v1/items/seven"),
    ("PUT", "/v1/items/seven"),
    ("GET", "/v1/items/files/a/b/c.txt"),
    ("GET", "/v1/items/shadowed/x"),
    ("GET", "/v1/items/7/"),
    ("GET", "/v1/items"),
    ("GET", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("GET", "/v1/me/"),
    ("PROPFIND", "/v1/me"),
    ("GET", "/"),
    ("GET", "/static/anything"),
    ("POST", "/static/anything"),
    ("GET", "/static"),
    ("GET", "/plain/1"),
    ("HEAD", "/plain/1"),
    ("POST", "/plain/1"),
    ("GET", "/late/1"),
    ("GET", "/nowhere"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/socket"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
async def test_a_request_is_answered_as_without_the_index(method: str, path: str) -> None:
    answers = []
    for with_index in (False, True):
        seen: list[dict[str, Any]] = []
        transport = httpx.ASGITransport(build_app(with_index, seen))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.request(method, path)
        headers = sorted(_relative_location(response.headers.items()))
        answers.append((response.status_code, headers, response.content, seen))
    assert answers[0] == answers[1]
    assert answers[0][0] != 500


def _relative_location(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers with the redirect's Location relative: the index sends it so
    (`test_a_trailing_slash_redirect_points_to_a_path_not_to_the_host_sent`), FastAPI with the
    request's scheme and Host in front."""
    return [
        (name, value.removeprefix("http://test") if name == "location" else value)
        for name, value in headers
    ]


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/v1/roadmaps/", "/v1/roadmaps"),
        ("/v1/roadmaps/?sort=title&limit=2", "/v1/roadmaps?sort=title&limit=2"),
        ("/v1/roadmaps/back%65nd/", "/v1/roadmaps/back%65nd"),  # as the client encoded it
        ("/v1/me/reviews/due/", "/v1/me/reviews/due"),
    ],
)
async def test_a_trailing_slash_redirect_points_to_a_path_not_to_the_host_sent(
    client: httpx.AsyncClient, path: str, location: str
) -> None:
    response = await client.get(path, headers={"host": "evil.example"})

    assert response.status_code == 307
    assert response.headers["location"] == location
    followed = await client.get(location)
    assert followed.status_code != 307
    if followed.status_code == 404:  # the route's own answer: a roadmap this test never made
        assert followed.json()["type"] == "/problems/roadmap-not-found"


async def test_a_path_whose_other_slash_form_names_another_host_is_not_redirected() -> None:
    app = FastAPI()

    @app.get("/{page}")
    async def any_page(page: str) -> dict[str, str]:
        return {"page": page}

    install_route_index(app)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        plain = await client.get("/about/")
        encoded = await client.get("/%5Cevil.example/")
    # A backslash as sent on the wire (httpx would have encoded it).
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = b"/" + BACKSLASH + b"evil.example/"
    scope = {"type": "http", "method": "GET", "path": raw.decode(), "raw_path": raw,
             "query_string": b"", "root_path": "", "headers": [(b"host", b"test")],
             "scheme": "http", "server": ("test", 80)}  # fmt: skip
    await app(scope, receive, send)
    backslash = dict(sent[0]["headers"])

    assert plain.headers["location"] == "/about"
    assert encoded.headers["location"] == "/%5Cevil.example"  # a path on this host
    # A browser reads a Location starting with a slash and a backslash as another host's
    # address: FastAPI's own answer (absolute, on the Host sent) instead.
    assert backslash[b"location"] == b"http://test/%5Cevil.example"


BACKSLASH = bytes([0x5C])


async def test_a_head_no_route_names_is_answered_as_its_get_without_the_body() -> None:
    """Where FastAPI alone answers 405 (its routes answer only the methods they name), the
    index answers HEAD as the GET (RFC 9110 §9.1): the route sees a GET."""
    answers = []
    for method, with_index in (("GET", False), ("HEAD", True)):
        seen: list[dict[str, Any]] = []
        transport = httpx.ASGITransport(build_app(with_index, seen))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.request(method, "/v1/me")
        answers.append((response.status_code, sorted(response.headers.items()), seen))
        if method == "HEAD":
            assert response.content == b""
    assert answers[0] == answers[1]
    assert answers[0][0] == 200


async def test_websockets_and_openapi_are_as_without_the_index() -> None:
    documents, conversations = [], []
    for with_index in (False, True):
        app = build_app(with_index, [])
        conversations.append(await converse(app, "/v1/socket"))
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            documents.append((await client.get("/openapi.json")).json())
    assert conversations[0] == conversations[1]
    assert {"type": "websocket.send", "text": "hello"} in conversations[0]
    assert documents[0] == documents[1]


async def converse(app: FastAPI, path: str) -> list[dict[str, Any]]:
    """A websocket client that connects, and hangs up once the server closes."""
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "scheme": "ws",
        "subprotocols": [],
        "app": app,
    }
    await app.router(scope, receive, send)
    return sent


async def test_skilltrees_404_and_405_are_fastapis(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/no-such-thing")
    wrong_method = await client.patch("/v1/me/reviews/due")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, HEAD, POST"
