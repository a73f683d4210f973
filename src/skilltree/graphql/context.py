"""What every resolver of one GraphQL request shares: the unit of work, the caller, the loaders.

A GraphQL document is one request: one unit of work (committed when the operation succeeded,
rolled back when a mutation failed), one authentication, one set of dataloaders. The caller is
found by the REST API's own dependencies (`accounts.dependencies.maybe_principal`: a session
cookie, with its CSRF token on POST; a bearer access token; an API key) and held as a
`Principal`; each resolver then asks for what its REST twin's dependency asks for.

Over a WebSocket (`sockets.py`) the context belongs to the connection: the credential is the
handshake's cookie or the `authorization` of `connection_init`, checked again whenever a
subscription starts and while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket
from strawberry.fastapi import BaseContext

from skilltree.accounts.dependencies import accounts_context_of, maybe_principal
from skilltree.accounts.errors import InsufficientScope, NotAuthenticated
from skilltree.identity import ANONYMOUS, Principal, Scope, Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.errors import DomainError
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.state import Resources
from skilltree.progress import service as progress
from skilltree.roadmaps.presenters import route_handlers

if TYPE_CHECKING:
    from skilltree.graphql.dataloaders import Loaders


@dataclass(frozen=True)
class Caller:
    """Who sent the document, as the REST dependencies found them (or why they could not)."""

    principal: Principal | None
    viewer: Viewer
    # Credentials that were sent but are wrong: every field needing a caller reports this
    # error, and anonymous reads do not proceed either (a bad token never becomes anonymous).
    failure: DomainError | None = None

    def principal_for(self, scope: Scope | None = None) -> Principal:
        """Like `CurrentPrincipal` (and `require_scope(scope)` when one is given)."""
        if self.failure is not None:
            raise self.failure
        if self.principal is None:
            raise NotAuthenticated()
        if scope is not None and not self.principal.has_scope(scope):
            raise InsufficientScope(f"This API key lacks the {scope.value!r} scope.", scope=scope)
        return self.principal


class GraphQLContext(BaseContext):
    def __init__(self, resources: Resources) -> None:
        super().__init__()
        self.resources = resources
        self._session: AsyncSession | None = None
        self._caller: Caller | None = None
        # One AsyncSession serves every resolver, and sibling fields resolve concurrently:
        # each database step holds this lock, so the session only ever runs one statement.
        self._lock = asyncio.Lock()
        self.loaders: Loaders | None = None
        self._endpoints: dict[str, Callable[..., object]] | None = None
        # Set by the graphql-transport-ws handler from `connection_init`'s payload.
        self.connection_params: dict[str, object] | None = None
        # Set when a subscription found the socket's sign-in revoked: the socket closes (4401).
        self.signed_out = False
        # Set when the document failed as a whole (a mutation, or one sent over the wrong
        # transport): the response has no data and its first error's HTTP status.
        self.document_failed = False

    async def begin(self, session: AsyncSession) -> None:
        """Bind the operation's unit of work and find the caller, as a REST request does."""
        from skilltree.graphql.dataloaders import Loaders

        self._session = session
        self.loaders = Loaders(self)
        self._caller = await self.authenticate(session)

    def credentials_request(self) -> Request | None:
        """The request whose credentials speak for the caller: the HTTP request itself, or a
        socket's handshake as the GET request it is, with `connection_init`'s authorization."""
        request = self.request
        if isinstance(request, Request):
            return request
        if isinstance(request, WebSocket):
            from skilltree.graphql.sockets import handshake_request

            return handshake_request(request, self.connection_params or {})
        return None

    async def authenticate(self, session: AsyncSession) -> Caller:
        """Who the credentials name now (a revoked sign-in is a failure, not anonymous)."""
        request = self.credentials_request()
        if request is None:
            return Caller(None, ANONYMOUS, NotAuthenticated())
        try:
            principal = await maybe_principal(request, session, accounts_context_of(self.resources))
        except DomainError as error:
            return Caller(None, ANONYMOUS, error)
        return Caller(principal, await orgs.viewer_of(session, principal))

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The operation's session, for one service call at a time."""
        assert self._session is not None, "the UnitOfWork extension opens the session"
        async with self._lock:
            yield self._session

    def endpoints(self) -> dict[str, Callable[..., object]]:
        """'METHOD /path' -> handler, to locate the concept map's endpoint references."""
        if self._endpoints is None:
            request = self.request
            self._endpoints = route_handlers(request) if isinstance(request, Request) else {}
        return self._endpoints

    @property
    def caller(self) -> Caller:
        assert self._caller is not None, "the UnitOfWork extension finds the caller"
        return self._caller

    def viewer(self) -> Viewer:
        """Like `CurrentViewer`: anonymous visitors see public roadmaps; wrong credentials fail."""
        if self.caller.failure is not None:
            raise self.caller.failure
        return self.caller.viewer

    def principal(self, scope: Scope | None = None) -> Principal:
        """Like `CurrentPrincipal` (and `require_scope(scope)` when one is given)."""
        return self.caller.principal_for(scope)

    def learner(self, scope: Scope) -> progress.Learner:
        """Like progress's `Reader` / `Writer` dependencies."""
        principal = self.principal(scope)
        return progress.Learner(
            user_id=principal.user_id,
            viewer=self.caller.viewer,
            clock=self.resources.clock,
            request_id=current_request_id(),
        )


async def graphql_context(connection: HTTPConnection) -> GraphQLContext:
    """The FastAPI dependency strawberry calls for every request (and socket)."""
    resources: Resources = connection.app.state.resources
    return GraphQLContext(resources)
