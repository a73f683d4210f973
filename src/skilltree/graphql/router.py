"""`/graphql`: strawberry's FastAPI integration, serving the schema over HTTP (GET for queries,
POST for queries and mutations) and over WebSocket (subscriptions, graphql-transport-ws).

The caller, the unit of work and the errors are those of the REST API (`context.py`,
`extensions.py`); the middleware (rate limits, body size, request ids, access log) applies as to
every route, and so does Idempotency-Key on POST (platform/http/idempotency.py). What this view
adds to strawberry's:

- every refusal is a GraphQL response whose errors carry the REST problem, including those
  strawberry answers itself in plain text (no query, JSON that does not parse, a mutation sent
  with GET);
- a mutation document that failed answers with its first error's HTTP status and no data: it
  changed nothing, and HTTP-level clients (the idempotency middleware, a retrying proxy, a
  dashboard of error rates) see a failure as one;
- persisted queries (`persisted.py`), the WebSocket's sign-in and closing codes (`sockets.py`),
  and the GraphiQL IDE from the package's own assets (`ide.py`).

The app does not include this router: it registers `lazy.py`'s light twins of its routes, which
build it on the first request to /graphql and hand every request to it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

# What strawberry raises for a request it refuses before running (its own dependency).
from cross_web import HTTPException
from fastapi import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from skilltree.accounts.dependencies import accounts_context_of, signed_in
from skilltree.graphql import ide, sockets
from skilltree.graphql.context import GraphQLContext, graphql_context
from skilltree.graphql.extensions import graphql_error_of, transport_problem, with_problem
from skilltree.graphql.lazy import GET_RESPONSES, GRAPHQL_PATH, ide_enabled, post_responses
from skilltree.graphql.persisted import PersistedQueries
from skilltree.graphql.schema import build_schema
from skilltree.platform.config import Settings
from skilltree.platform.errors import DomainError
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.state import resources_of


class GraphQLEndpoint(GraphQLRouter[GraphQLContext, None]):
    graphql_transport_ws_handler_class = sockets.TransportWSHandler

    def __init__(self, settings: Settings, persisted: PersistedQueries | None = None) -> None:
        # Read when the app starts (lazy.py), so that a broken registry stops the start.
        if persisted is None:
            persisted = PersistedQueries.from_settings(settings.graphql)
        self.persisted = persisted
        with_ide = ide_enabled(settings)
        super().__init__(
            build_schema(settings),
            path=GRAPHQL_PATH,
            graphql_ide="graphiql" if with_ide else None,
            context_getter=graphql_context,
            tags=["graphql"],
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.auth.allowed_origins,
            max_subscriptions_per_connection=settings.graphql.socket_operations,
        )

    def get(self, path: str, *args: Any, **kwargs: Any) -> Any:
        """strawberry's GET route, its 200 documented as what it is: a query's result as JSON,
        or for a browser, the IDE's page (where the IDE is on). strawberry lists JSON alone."""
        kwargs["responses"] = {**(kwargs.get("responses") or {}), **GET_RESPONSES}
        return super().get(path, *args, **kwargs)

    def post(self, path: str, *args: Any, **kwargs: Any) -> Any:
        """strawberry's POST route, declaring Idempotency-Key (which the middleware then
        guards) and the problems it may answer."""
        kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), IDEMPOTENT]
        kwargs["responses"] = {**post_responses(), **(kwargs.get("responses") or {})}
        return super().post(path, *args, **kwargs)

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        await sockets.admit(context)
        unset: UnsetType = UNSET
        return unset

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A browser asking for a page; not a GET that names a persisted query by hash alone."""
        return (
            super().should_render_graphql_ide(request)
            and request.query_params.get("extensions") is None
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return ide.page(GRAPHQL_PATH, await _csrf_token_of(request))

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            return _refusal(refused.status_code, refused.reason)

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: GraphQLContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            document = self.persisted.document(request_data.query, request_data.extensions)
        except DomainError as error:
            return ExecutionResult(data=None, errors=[graphql_error_of(error)])
        result = await super().execute_single(
            request,
            request_adapter,
            sub_response,
            context,
            root_value,
            replace(request_data, query=document),
        )
        if result.errors:
            # Errors raised around the execution (a failed commit, a refused transport) skip
            # the extensions that add problems: every error leaves here with its problem.
            result.errors = [
                error if "problem" in (error.extensions or {}) else with_problem(error)
                for error in result.errors
            ]
        if context.document_failed and result.errors:
            problem = (result.errors[0].extensions or {}).get("problem", {})
            sub_response.status_code = int(problem.get("status", 400))
            result.data = None
        return result


async def _csrf_token_of(request: Request) -> str | None:
    resources = resources_of(request)
    if resources.settings.auth.session_cookie not in request.cookies:
        return None
    async with resources.database.unit_of_work() as session:
        try:
            current = await signed_in(request, session, accounts_context_of(resources))
        except DomainError:
            return None
    return current.browser_session.csrf_token if current.browser_session else None


def _refusal(status: int, reason: str) -> Response:
    """A request strawberry refused before running it, as a GraphQL response with its problem."""
    problem = transport_problem(status, reason)
    body = {"data": None, "errors": [{"message": reason, "extensions": {"problem": problem}}]}
    return JSONResponse(body, status_code=status)


def graphql_router(
    settings: Settings, persisted: PersistedQueries | None = None
) -> GraphQLEndpoint:
    return GraphQLEndpoint(settings, persisted)
