"""The request lifecycle of a GraphQL operation: its unit of work, and errors as problems.

`UnitOfWork` opens one unit of work around the execution of a query or mutation and finds the
caller in it. A mutation document is all or nothing: when any of its fields failed, everything
it wrote is rolled back (a domain error whose writes must survive, such as a revoked token
family, still commits, as it does over REST), its `data` is null and the HTTP status is its
first error's, as its REST twin would answer (`router.py`). The commit happens before the
response is built, so a failed commit is an error in the response, never data reported as
stored. Under an Idempotency-Key the unit of work is the one the idempotency middleware opened,
so the response it stores commits with the work it describes.

Over a WebSocket only subscriptions run: queries and mutations go over HTTP, where rate limits,
Idempotency-Key and caching apply.

`ProblemErrors` gives every error the REST API's problem details in `extensions.problem`
(type, title, status, detail and the error's own members), and hides the message of an
unexpected error, which is logged instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any

import structlog
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from graphql import GraphQLError
from skilltree.graphql.context import GraphQLContext
from skilltree.platform.db import KEEP_CHANGES, shared_request_session
from skilltree.platform.errors import DomainError
from skilltree.platform.http.problems import PROBLEM_TYPE_PREFIX
from skilltree.platform.observability.context import current_request_id

log = structlog.get_logger(__name__)


class _Discard(Exception):
    """Leaves the unit of work so that it rolls back."""


class WrongTransport(DomainError):
    """A subscription sent over HTTP: refused before it runs, as a document that cannot."""

    status = 400
    type_slug = "invalid-query"
    title = "Invalid query"


class SubscriptionsOnly(DomainError):
    status = 400
    type_slug = "subscriptions-only"
    title = "Only subscriptions over WebSocket"


class UnitOfWork(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        assert isinstance(context, GraphQLContext)
        operation = self.execution_context.operation_type
        if operation is OperationType.SUBSCRIPTION:
            if not isinstance(context.request, WebSocket):
                context.document_failed = True
                raise WrongTransport("Subscriptions run over WebSocket at /graphql.")
            # A subscription lives long; it opens short units of work of its own.
            yield
            return
        if isinstance(context.request, WebSocket):
            raise SubscriptionsOnly("Send queries and mutations to /graphql over HTTP.")
        writes = operation is OperationType.MUTATION
        shared = shared_request_session()
        if shared is not None:
            # The idempotency middleware commits (or not) after reading KEEP_CHANGES.
            await context.begin(shared)
            yield
            shared.info[KEEP_CHANGES] = not writes or self._succeeded(context)
            return
        try:
            async with context.resources.database.unit_of_work(writes=writes) as session:
                await context.begin(session)
                yield
                if writes and not self._succeeded(context):
                    raise _Discard
        except _Discard:
            pass

    def _succeeded(self, context: GraphQLContext) -> bool:
        """Whether the mutation document's writes stand; a failed one is marked for the view."""
        result = self.execution_context.result
        if not getattr(result, "errors", None):
            return True
        context.document_failed = True
        return _keeps_changes(result)


def _keeps_changes(result: Any) -> bool:
    errors = getattr(result, "errors", None) or []
    return all(
        isinstance(error.original_error, DomainError) and error.original_error.keeps_changes
        for error in errors
    )


def problem_of(error: DomainError) -> dict[str, Any]:
    """The RFC 9457 members a REST response would carry for this error."""
    return {
        "type": PROBLEM_TYPE_PREFIX + error.type_slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **{key: _plain(value) for key, value in error.extensions.items()},
    }


def _plain(value: Any) -> Any:
    return (
        value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
    )


class ProblemErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [with_problem(error) for error in result.errors]

    def on_stream_result(self, result: Any) -> None:  # type: ignore[override]
        """The same, for each message of a subscription (and operations over a socket)."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [with_problem(error) for error in errors]


def transport_problem(status: int, detail: str) -> dict[str, Any]:
    """The problem of a request refused before any document ran (no query, bad JSON...)."""
    invalid = status == 400
    return {
        "type": PROBLEM_TYPE_PREFIX + "invalid-query" if invalid else "about:blank",
        "title": "Invalid query" if invalid else HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
    }


def graphql_error_of(error: DomainError) -> GraphQLError:
    """An error found before a document ran (a persisted query's), as a GraphQL error."""
    return with_problem(GraphQLError(error.detail, original_error=error))


def with_problem(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        problem = problem_of(original)
        message = original.detail
    elif original is None or isinstance(original, GraphQLError):
        # The document itself is wrong (syntax, validation, a limit): a 400 over REST.
        problem = {
            "type": PROBLEM_TYPE_PREFIX + "invalid-query",
            "title": "Invalid query",
            "status": 400,
            "detail": error.message,
        }
        message = error.message
    else:
        # A bug: logged in full, shown as the REST API shows a 500 (no internals).
        log.error("graphql.unexpected_error", path=error.path, exc_info=original)
        problem = {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "An unexpected error occurred. Quote the request id when reporting it.",
        }
        message = problem["detail"]
    problem["request_id"] = current_request_id()
    extensions = {**(error.extensions or {}), "problem": problem}
    code = getattr(original, "code", None)
    if isinstance(code, str):
        extensions["code"] = code  # conventions clients match on (PERSISTED_QUERY_NOT_FOUND)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )
