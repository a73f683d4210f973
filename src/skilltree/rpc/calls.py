"""What every gRPC method shares: its deadline, its unit of work, its caller, its errors.

    return await run(context, resources, read_tree, writes=False)

`run` gives the work a `Caller` inside one unit of work (committed when the work returns,
rolled back when it raises), bounded by the call's deadline: when the client's deadline passes,
the work is cancelled where it waits, its unit of work rolls back, and the call ends with
DEADLINE_EXCEEDED. A `DomainError` becomes the gRPC status of problems.py.

The caller is found the REST API's way (`accounts.dependencies.bearer_sign_in`): a bearer
access token or API key in the `authorization` metadata. gRPC has no cookies, so there is no
session (and no CSRF) here. Credentials that are sent but wrong fail the call, even where an
anonymous caller would be served: a bad token never silently becomes "anonymous".
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.dependencies import accounts_context_of, bearer_sign_in
from skilltree.accounts.errors import InsufficientScope, NotAuthenticated
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Principal, Scope, Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.errors import DomainError
from skilltree.platform.http.rate_limit import RateLimiter, StoreUnavailable
from skilltree.platform.observability.context import request_id_var
from skilltree.platform.state import Resources
from skilltree.progress import service as progress
from skilltree.rpc.problems import InvalidArgument, RateLimited, abort_with_problem

T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]
AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"
_SLUG = re.compile(SLUG_PATTERN)
# Less time than this left when a call arrives: no call could finish in it.
LEAST_USEFUL_SECONDS = 0.005


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the REST dependencies would have found them, and their session."""

    session: AsyncSession
    resources: Resources
    principal: Principal | None
    viewer: Viewer

    def signed_in(self, scope: Scope | None = None) -> Principal:
        """Like `CurrentPrincipal` (and `require_scope(scope)` when one is given)."""
        if self.principal is None:
            raise NotAuthenticated()
        if scope is not None and not self.principal.has_scope(scope):
            raise InsufficientScope(f"This API key lacks the {scope.value!r} scope.", scope=scope)
        return self.principal

    def learner(self, scope: Scope) -> progress.Learner:
        """Like progress's `Reader` / `Writer` dependencies."""
        principal = self.signed_in(scope)
        return progress.Learner(
            user_id=principal.user_id,
            viewer=self.viewer,
            clock=self.resources.clock,
            request_id=request_id_var.get(),
        )


def metadata_value(context: Context, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode()
    return None


async def authenticate(session: AsyncSession, resources: Resources, context: Context) -> Caller:
    authorization = metadata_value(context, AUTHORIZATION)
    principal = None
    if authorization is not None:
        signed_in = await bearer_sign_in(authorization, session, accounts_context_of(resources))
        if signed_in is None:
            raise NotAuthenticated()  # sent, but not `Bearer <token or key>`
        principal = signed_in.principal
    return Caller(session, resources, principal, await orgs.viewer_of(session, principal))


async def run(
    context: Context,
    resources: Resources,
    work: Callable[[Caller], Awaitable[T]],
    *,
    writes: bool,
    limiter: RateLimiter | None = None,
) -> T:
    """Authenticate and do `work` in one unit of work, within the call's deadline and the
    caller's rate limit."""
    request_id_var.set(_request_id(context))
    try:
        await within_rate_limit(limiter, context, writes=writes)
    except DomainError as error:
        await abort_with_problem(context, error)
    remaining = context.time_remaining()
    if remaining is not None and remaining < LEAST_USEFUL_SECONDS:
        # Arrived (nearly) expired: refuse before opening anything rather than start work
        # that can only be cancelled half-way.
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "The call's deadline passed.")
    try:
        async with asyncio.timeout(remaining) as deadline:
            async with resources.database.unit_of_work(writes=writes) as session:
                return await work(await authenticate(session, resources, context))
    except DomainError as error:
        await abort_with_problem(context, error)
    except TimeoutError:
        if not deadline.expired():
            raise  # a timeout of the work's own (a database's), not the caller's deadline
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "The call's deadline passed.")
    raise AssertionError("context.abort raises")  # pragma: no cover


async def within_rate_limit(limiter: RateLimiter | None, context: Context, *, writes: bool) -> None:
    """The REST API's `read` and `write` policies, counted in the same store, per credential
    (its hash) or per client address when anonymous: a key's budget is one, whichever API
    style spends it. As over HTTP, an unreachable store lets the call through."""
    if limiter is None:
        return
    policy = limiter.policies["write" if writes else "read"]
    credential = metadata_value(context, AUTHORIZATION)
    if credential is None:
        key = "ip:" + context.peer().rsplit(":", 1)[0].removeprefix("ipv4:").removeprefix("ipv6:")
    else:
        key = "cred:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
    try:
        decision = await limiter.check(policy, key)
    except StoreUnavailable:
        return
    if not decision.allowed:
        raise RateLimited(
            f"Over the {policy.name!r} limit of {policy.limit.amount} calls per "
            f"{policy.window_seconds} s; try again in {decision.reset_seconds} s.",
            retry_after_seconds=decision.reset_seconds,
        )


def slug(value: str, field: str) -> str:
    """A slug field, checked as the REST API checks path segments."""
    if not value or len(value) > MAX_SLUG_LENGTH or not _SLUG.fullmatch(value):
        raise InvalidArgument(
            f"{field} must be a slug (lower-case letters, digits and single hyphens).",
            errors=[{"field": field, "message": "not a slug", "type": "string_pattern_mismatch"}],
        )
    return value


def _request_id(context: Context) -> str:
    sent = metadata_value(context, REQUEST_ID)
    if sent is not None and 0 < len(sent) <= 64 and sent.isascii() and sent.isprintable():
        return sent
    return uuid.uuid4().hex
