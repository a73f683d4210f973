"""RFC 9457 problem details: every error the API returns, expected or not, has one shape.

    {"type": "/problems/roadmap-not-found", "title": "Roadmap not found", "status": 404,
     "detail": "There is no roadmap 'x'.", "instance": "/v1/roadmaps/x", "request_id": "..."}

`type` is a URI reference naming the kind of problem (RFC 9457 §3.1.1; relative references are
allowed and resolve against the API's origin); errors that are plain HTTP conditions use
"about:blank" with the status's reason phrase as title (§4.2.1). Members beyond the standard
ones are extensions (§3.2), e.g. `errors` for validation or `line` for an import.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from skilltree.platform.errors import DomainError
from skilltree.platform.observability.context import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "/problems/"


class Problem(BaseModel):
    """An RFC 9457 problem details object (extension members allowed)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None


def problem_response(
    status: int,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body["request_id"] = current_request_id()
    body.update(extensions)
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting each status as application/problem+json."""
    schema = Problem.model_json_schema()
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


def field_path(location: tuple[int | str, ...]) -> str:
    """('body', 'topics', 2, 'title') -> 'body.topics[2].title'."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def domain_error_response(error: DomainError, instance: str) -> Response:
    """The problem response for a domain error (also used by middleware, outside the handlers)."""
    return problem_response(
        error.status,
        title=error.title,
        type_=PROBLEM_TYPE_PREFIX + error.type_slug,
        detail=error.detail,
        instance=instance,
        headers=error.headers or None,
        **error.extensions,
    )


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    return domain_error_response(error, request.url.path)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    # Each error names the field by its path and never echoes the (possibly huge) input.
    errors = [
        {"field": field_path(tuple(item["loc"])), "message": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]
    return problem_response(
        422,
        title="Validation failed",
        type_=PROBLEM_TYPE_PREFIX + "validation-error",
        detail=f"The request has {len(errors)} invalid field(s).",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if error.detail and error.detail != phrase else None
    headers = dict(error.headers) if error.headers else {}
    if error.status_code == 405:
        headers = {name: value for name, value in headers.items() if name.lower() != "allow"}
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        error.status_code, detail=detail, instance=request.url.path, headers=headers or None
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. The router answers 405 from the first route
    whose path matches, which knows only its own methods (RFC 9110 §15.5.6 asks for all)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")  # answered as the GET without its body (platform/http/route_index.py)
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    """Render domain errors, validation errors and HTTP errors as problem+json.

    Unexpected exceptions are turned into a 500 problem by UnhandledErrorMiddleware, which also
    logs them with their traceback.
    """
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
