"""`/graphql` registered when the app starts, strawberry loaded when the first request arrives.

strawberry, graphql-core and the schema cost a worker about 10 MiB it keeps for its life
(docs/performance.md); a worker that is never asked a GraphQL question should not pay it. But
three things read the app's routes when it starts, before any request: the OpenAPI document,
the idempotency middleware (which guards the POST routes that declare IDEMPOTENT) and the
authorization tests' route tables. So the app registers, at start, light routes with the paths,
methods, names and OpenAPI data of strawberry's (GET and POST /graphql, the WebSocket for
subscriptions, and the IDE's files when the IDE is on), none of which imports strawberry.

Every request to one of them is handed, as ASGI, to its twin in the real router
(`router.GraphQLEndpoint`), which `LazyGraphQL` builds on the first request. The build is
synchronous and never awaits: no other request of the worker's event loop can run between
"not built yet" and "built", so concurrent first requests build it once. The first request
waits for the build (the schema: tens of milliseconds), once per worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import Receive, Scope, Send

from skilltree.graphql import ide
from skilltree.graphql.persisted import PersistedQueries
from skilltree.platform.config import Settings
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.problems import problem_responses

if TYPE_CHECKING:
    from collections.abc import Callable

GRAPHQL_PATH = "/graphql"
# A failed document answers GraphQL's JSON; the middleware around every route answers problems.
FAILED_DOCUMENT = (
    "A mutation document that failed, or a request refused before any document ran: the GraphQL "
    "response (`data` null, each error's REST problem in `extensions.problem`) with the first "
    "error's status. Idempotency-Key refusals are problems (application/problem+json)."
)
DOCUMENT_STATUSES = (400, 401, 403, 404, 409, 412, 422, 428)
MIDDLEWARE_STATUSES = (400, 409, 413, 422, 429)
# What the GET route documents (router.py: strawberry's 404, and its 200 as it is: strawberry
# describes the IDE alone and lists JSON).
GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The result of the query in the URL, or for a browser asking for a page "
        "(Accept: text/html), the GraphiQL IDE where it is enabled.",
        "content": {"application/json": {}, "text/html": {}},
    },
    404: {"description": "Not found if GraphiQL or query via GET are not enabled."},
}
# What the routes take, for the API description: strawberry reads the request itself, so
# FastAPI would describe neither the query parameters nor the body (GraphQL over HTTP).
# Each field: its description, and its JSON Schema in a POST body (in a GET's query string,
# every one is a string: `variables` and `extensions` as JSON).
_QUERY_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "query": ("The GraphQL document.", {"type": "string"}),
    "variables": ("Values of the document's variables, by name.", {"type": ["object", "null"]}),
    "operationName": ("Which operation of the document to run.", {"type": "string"}),
    "extensions": (
        'A persisted query instead of `query`: `{"persistedQuery": {"version": 1, '
        '"sha256Hash": "…"}}` (docs/api-styles.md).',
        {"type": ["object", "null"]},
    ),
}
GET_DESCRIPTION = {
    "summary": "Run a GraphQL query",
    "description": "A query (not a mutation) in the URL, as GraphQL over HTTP has it: cacheable "
    "like any GET. `variables` and `extensions` are JSON in the query string. A browser asking "
    "for a page gets the GraphiQL IDE where it is enabled.",
    "openapi_extra": {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": {"type": "string"},
            }
            for name, (description, _) in _QUERY_FIELDS.items()
        ]
    },
}
POST_DESCRIPTION = {
    "summary": "Run a GraphQL query or mutation",
    "description": "The document and its variables as JSON, as GraphQL over HTTP has it. A "
    "mutation that fails answers with its first error's status and `data` null (nothing "
    "changed); errors carry the REST problem in `extensions.problem`.",
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {**schema, "description": description}
                            for name, (description, schema) in _QUERY_FIELDS.items()
                        },
                    }
                }
            },
        }
    },
}
# The names strawberry gives its routes (those of its endpoint functions).
GET_ROUTE, POST_ROUTE, SOCKET_ROUTE = "handle_http_get", "handle_http_post", "websocket_endpoint"


def post_responses() -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(*MIDDLEWARE_STATUSES)
    for status in DOCUMENT_STATUSES:
        problem = responses.get(status, {}).get("content", {})
        responses[status] = {
            "description": FAILED_DOCUMENT,
            "content": {"application/json": {}, **problem},
        }
    return responses


def ide_enabled(settings: Settings) -> bool:
    configured = settings.graphql.ide
    return settings.app.env != "production" if configured is None else configured


async def ide_asset(name: Annotated[str, Path(max_length=100)]) -> Response:
    """A script or stylesheet of the IDE, by its hashed name: kept for a year."""
    return ide.asset_response(name)


async def reaches_storage() -> None:
    """Declared by the light routes, never called: their twins' context getter reaches the
    database and Redis, and the OpenAPI document says so (the 503) when it finds this."""


class LazyGraphQL:
    """strawberry's router, built by `build` on the first request that needs it."""

    def __init__(self, build: Callable[[], APIRouter]) -> None:
        self._build = build
        self._routes: dict[str, BaseRoute] | None = None

    def twin(self, name: str) -> BaseRoute:
        """The real route named `name`, building the router first if no request has yet.

        No await between the check and the assignment: on one event loop this runs whole."""
        if self._routes is None:
            built = self._build()
            self._routes = {route.name: route for route in built.routes if hasattr(route, "name")}
        return self._routes[name]

    async def serve(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        await self.twin(name).handle(scope, receive, send)


class _Delegated(Response):
    """What a light HTTP route answers: its twin's answer to the same ASGI call."""

    def __init__(self, graphql: LazyGraphQL, name: str) -> None:
        super().__init__()
        self._graphql, self._name = graphql, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._graphql.serve(self._name, scope, receive, send)


class LightRoute(APIRoute):
    """An APIRoute for what it declares (OpenAPI, IDEMPOTENT) whose handler is its twin's.

    The handler replaces FastAPI's (which would resolve the endpoint's dependencies and call
    it): the endpoint below is never called, only read for its name and declarations."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, graphql: LazyGraphQL, **kw: Any):
        # Set before APIRoute's __init__, which builds the handler.
        self.graphql = graphql
        super().__init__(path, endpoint, **kw)

    def get_route_handler(self) -> Callable[[Request], Any]:
        graphql, name = self.graphql, self.name

        async def delegate(_request: Request) -> Response:
            return _Delegated(graphql, name)

        return delegate


class _SocketDelegate:
    """The WebSocket's ASGI app: the twin's."""

    def __init__(self, graphql: LazyGraphQL) -> None:
        self._graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._graphql.serve(SOCKET_ROUTE, scope, receive, send)


# The light endpoints: strawberry's names (OpenAPI derives summaries and operation ids from
# them) and what their twins declare; never called.
async def handle_http_get(_storage: Annotated[None, Depends(reaches_storage)]) -> Response:
    raise NotImplementedError


async def handle_http_post(_storage: Annotated[None, Depends(reaches_storage)]) -> Response:
    raise NotImplementedError


def lazy_graphql_router(settings: Settings) -> APIRouter:
    """The routes of `/graphql`, strawberry's loaded on the first request."""

    # Read now, not on the first request: a broken registry stops the start.
    persisted = PersistedQueries.from_settings(settings.graphql)

    def build() -> APIRouter:
        from skilltree.graphql.router import graphql_router

        return graphql_router(settings, persisted)

    graphql = LazyGraphQL(build)
    router = APIRouter(tags=["graphql"])
    # In strawberry's order: GET, POST, the WebSocket; then the IDE's files.
    router.routes.append(
        LightRoute(
            GRAPHQL_PATH,
            handle_http_get,
            graphql=graphql,
            methods=["GET"],
            tags=["graphql"],
            responses=GET_RESPONSES,
            **GET_DESCRIPTION,
        )
    )
    router.routes.append(
        LightRoute(
            GRAPHQL_PATH,
            handle_http_post,
            graphql=graphql,
            methods=["POST"],
            tags=["graphql"],
            dependencies=[IDEMPOTENT],
            responses=post_responses(),
            **POST_DESCRIPTION,
        )
    )
    router.routes.append(WebSocketRoute(GRAPHQL_PATH, _SocketDelegate(graphql), name=SOCKET_ROUTE))
    if ide_enabled(settings):
        router.add_api_route(
            f"{GRAPHQL_PATH}/ide/{{name}}",
            ide_asset,
            methods=["GET"],
            summary="A file of the GraphQL IDE",
            responses={404: {"description": "No such file (or not of this release)."}},
            response_class=Response,
            include_in_schema=False,  # a file of a page, like the web app's assets
        )
    return router
