"""Errors as pages for browsers, problem+json for everyone else.

One set of handlers (platform.http.problems) renders every error as RFC 9457 problem+json.
Here they are wrapped: a request that accepts HTML and is not for the API (`/v1`) gets a page
saying the same thing instead, with the request id to quote. API clients see no difference.
A page that needs a sign-in redirects there (303) rather than showing a 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from skilltree.platform.errors import DomainError
from skilltree.platform.http.middleware import error_log
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.observability.context import current_request_id
from skilltree.web.session import SignInRequired, forget_dead_session, sign_in_url
from skilltree.web.templating import page

Handler = Callable[[Request, Exception], Awaitable[Response]]
OIDC_CALLBACK = API_PREFIX + "/auth/oidc/"
NOT_PAGES = (API_PREFIX + "/", "/docs", "/redoc", "/openapi.json", "/metrics", "/livez", "/readyz")


def wants_html(request: Request) -> bool:
    """A browser asking for a page: Accept names text/html and the path is not the API's."""
    path = request.url.path
    if path.startswith(OIDC_CALLBACK) and path.endswith("/callback"):
        # The provider sends the browser here: a failed sign-in is shown as a page too.
        return "text/html" in request.headers.get("accept", "")
    if path == API_PREFIX or path.startswith(NOT_PAGES):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, title: str, detail: str | None) -> Response:
    return page(
        request,
        "error.html",
        {
            "status": status,
            "title": title,
            "detail": detail,
            "request_id": current_request_id(),
            "current": None,
        },
        status_code=status,
    )


def _wrap(problem_handler: Handler) -> Handler:
    async def handle(request: Request, error: Exception) -> Response:
        return forget_dead_session(request, await _answer(request, error))

    async def _answer(request: Request, error: Exception) -> Response:
        if isinstance(error, SignInRequired) and wants_html(request):
            return RedirectResponse(sign_in_url(error.next_path), status_code=303)
        if not wants_html(request):
            return await problem_handler(request, error)
        if isinstance(error, DomainError):
            return error_page(request, error.status, error.title, error.detail)
        if isinstance(error, StarletteHTTPException):
            phrase = HTTPStatus(error.status_code).phrase
            detail = error.detail if error.detail and error.detail != phrase else None
            if error.status_code == 404 and detail is None:
                detail = "There is no page at this address."
            return error_page(request, error.status_code, phrase, detail)
        return error_page(request, 422, "That did not look right", "Check the address or form.")

    return handle


def install_html_errors(app: FastAPI) -> None:
    """Wrap the problem+json handlers already installed (call after install_problem_handlers)."""
    for kind in (DomainError, RequestValidationError, StarletteHTTPException):
        existing = cast("Handler", app.exception_handlers[kind])
        app.add_exception_handler(kind, _wrap(existing))


class PageRoute(APIRoute):
    """A page whose bug becomes a 500 page (logged with its traceback) rather than JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return forget_dead_session(request, await handler(request))
            except (DomainError, StarletteHTTPException, RequestValidationError):
                raise
            except Exception:
                if not wants_html(request):
                    raise
                error_log.exception("unhandled error", method=request.method, path=request.url.path)
                return error_page(
                    request,
                    500,
                    "Something went wrong on our side",
                    "The error is logged. Quote the request id when reporting it.",
                )

        return handle
