"""Who is looking at a page, and the CSRF defence of every form.

Pages authenticate by the session cookie only (an API client has no business on them). A
missing or ended session makes the visitor anonymous; a page that needs a sign-in sends them
to /sign-in and back. Every form carries the session's CSRF token in a hidden field and is
checked by the same rule as the API's `X-CSRF-Token` (accounts.dependencies.check_csrf); forms
used before a session exists are held to the same-origin checks alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from skilltree.accounts.dependencies import Accounts, check_csrf, check_origin
from skilltree.accounts.errors import NotAuthenticated
from skilltree.accounts.service import SignedIn, authenticate
from skilltree.identity import Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.clock import EPOCH
from skilltree.platform.errors import DomainError
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.state import AppResources, DbSession
from skilltree.progress import service as progress

CSRF_FIELD = "csrf_token"


class SignInRequired(DomainError):
    """A page for signed-in learners, asked for without a session (the web app redirects)."""

    status = 401
    type_slug = "not-authenticated"
    title = "Sign in required"

    def __init__(self, next_path: str) -> None:
        super().__init__("Sign in to see this page.")
        self.next_path = next_path


def sign_in_url(next_path: str) -> str:
    return f"/sign-in?next={quote(next_path, safe='/')}" if next_path != "/" else "/sign-in"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


async def visitor(request: Request, db: DbSession, ctx: Accounts) -> SignedIn | None:
    secret = request.cookies.get(ctx.auth.session_cookie)
    if secret is None:
        return None
    try:
        if secret:
            return await authenticate(db, ctx, secret, request.scope.get("state"))
    except NotAuthenticated:
        pass
    # A session that ended (signed out elsewhere, expired, revoked): the page shown to the
    # visitor tells the browser to drop the cookie (`forget_dead_session`), which it would
    # otherwise send with every request for as long as it keeps it.
    request.state.dead_session_cookie = ctx.auth.session_cookie
    return None


def forget_dead_session(request: Request, response: Response) -> Response:
    """The response, clearing the session cookie if `visitor` found it dead."""
    name = getattr(request.state, "dead_session_cookie", None)
    if name is not None and "set-cookie" not in response.headers:
        # Expired at the epoch rather than now (Starlette's `delete_cookie`): the same header
        # whenever it is sent.
        response.set_cookie(name, "", max_age=0, expires=EPOCH, path="/")
    return response


Visitor = Annotated[SignedIn | None, Depends(visitor)]


async def member(request: Request, current: Visitor) -> SignedIn:
    if current is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return current


Member = Annotated[SignedIn, Depends(member)]


@dataclass(frozen=True)
class Posted:
    """A form posted by a signed-in learner whose CSRF token checked out."""

    current: SignedIn
    form: FormData

    def get(self, name: str, default: str = "") -> str:
        value = self.form.get(name, default)
        return value if isinstance(value, str) else default


async def posted(request: Request, current: Member, ctx: Accounts) -> Posted:
    form = await request.form()
    token = form.get(CSRF_FIELD)
    check_csrf(request, current, ctx, token=token if isinstance(token, str) else "")
    return Posted(current, form)


SignedInForm = Annotated[Posted, Depends(posted)]


async def anonymous_form(request: Request, ctx: Accounts) -> FormData:
    check_origin(request, ctx)
    return await request.form()


AnonymousForm = Annotated[FormData, Depends(anonymous_form)]


async def viewer_of(db: DbSession, current: SignedIn | None) -> Viewer:
    return await orgs.viewer_of(db, current.principal if current is not None else None)


async def learner_of(db: DbSession, current: SignedIn, resources: AppResources) -> progress.Learner:
    return progress.Learner(
        user_id=current.user.id,
        viewer=await viewer_of(db, current),
        clock=resources.clock,
        request_id=current_request_id(),
    )


def csrf_token(current: SignedIn | None) -> str:
    if current is None or current.browser_session is None:
        return ""
    return current.browser_session.csrf_token
