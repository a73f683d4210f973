"""`/graphql` over WebSocket, graphql-transport-ws only: who may open a socket, and when it ends.

The REST API's rules, on a connection instead of a request:

- Origin: browsers attach cookies to a WebSocket handshake from any page, and CORS does not
  apply to it, so a handshake whose `Origin` is neither this server's nor on
  `SKILLTREE_AUTH_ALLOWED_ORIGINS` is refused before anything else (HTTP 403; the view does
  it, `router.py`). Clients that are not browsers send no Origin and carry no one's cookie.
- Credentials: the session cookie of the handshake, or `authorization: "Bearer <access token
  or API key>"` in the `connection_init` payload (a browser cannot set headers on a handshake).
  The socket is authenticated as the GET request its handshake is, by the REST API's own
  `maybe_principal`; none, or a wrong one, closes it with 4401.
- A subscription checks the credential again every `SKILLTREE_REALTIME_CREDENTIAL_CHECK_SECONDS`,
  as the event streams do (decision 0037): signing out, or revoking the token family or the API
  key, ends it with a `not-authenticated` error and closes the socket with 4401.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from skilltree.graphql.context import GraphQLContext
from skilltree.graphql.extensions import graphql_error_of
from skilltree.graphql.persisted import PersistedQueries
from skilltree.platform.errors import DomainError

# graphql-transport-ws's own codes, and the one WebSocket gives a restarting server.
UNAUTHORIZED = 4401
SERVICE_RESTART = 1012


class SocketRefused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def handshake_request(websocket: WebSocket, params: Mapping[str, object]) -> Request:
    """The handshake as a GET request, with `connection_init`'s authorization as its header."""
    headers = list(websocket.scope["headers"])
    authorization = params.get("authorization")
    if isinstance(authorization, str) and authorization:
        headers = [(name, value) for name, value in headers if name != b"authorization"]
        # Not Latin-1: cannot be a credential; '?' makes it fail as a wrong one does.
        headers.append((b"authorization", authorization.encode("latin-1", "replace")))
    return Request({**websocket.scope, "type": "http", "method": "GET", "headers": headers})


async def admit(context: GraphQLContext) -> None:
    """Accept `connection_init` from a signed-in caller; raise SocketRefused otherwise."""
    resources = context.resources
    if resources.broadcaster.draining is not None:
        raise SocketRefused(SERVICE_RESTART, resources.broadcaster.draining)
    async with resources.database.unit_of_work() as session:
        caller = await context.authenticate(session)
    if caller.failure is not None or caller.principal is None:
        raise SocketRefused(UNAUTHORIZED, "Unauthorized")


class TransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """strawberry's protocol handler, with the closing codes above and persisted queries."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload")
        persisted: PersistedQueries | None = getattr(self.view, "persisted", None)
        if persisted is not None and isinstance(payload, dict) and self.connection_acknowledged:
            try:
                document = persisted.document(payload.get("query"), payload.get("extensions"))
            except DomainError as error:
                refused = graphql_error_of(error)
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [refused.formatted]}
                )
                return
            message = {**message, "payload": {**payload, "query": document or ""}}
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[GraphQLContext, None]) -> None:
        await super().run_operation(operation)
        if self.context.signed_out:
            await self.websocket.close(code=UNAUTHORIZED, reason="signed out")
