"""RFC 9457 problem details: every error the API returns, expected or not, has one shape.

    {"type": "/problems/roadmap-not-found", "title": "Roadmap not found", "status": 404,
     "detail": "There is no roadmap 'x'.", "instance": "/v1/roadmaps/x", "request_id": "..."}

`type` is a URI reference naming the kind of problem (RFC 9457 §3.1.1; relative references are
allowed and resolve against the API's origin); errors that are plain HTTP conditions use
"about:blank" with the status's reason phrase as title (§4.2.1). Members beyond the standard
ones are extensions (§3.2), e.g. `errors` for validation or `line` for an import.
"""

from __future__ import annotations

import email.message
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from skilltree.platform.errors import DomainError, UnsupportedMediaType
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
    if _json_body_sent_as_another_type(request, error):
        return domain_error_response(
            UnsupportedMediaType(
                "This endpoint reads its body as JSON: send it with Content-Type: "
                "application/json (or another JSON media type, such as application/*+json)."
            ),
            request.url.path,
        )
    # Each error names the field by its path and never echoes the (possibly huge) input.
    errors = [
        {"field": field_path(tuple(item["loc"])), "message": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]
    return invalid_fields_response(request.url.path, errors)


def invalid_fields_response(instance: str, errors: list[dict[str, str]]) -> Response:
    return problem_response(
        422,
        title="Validation failed",
        type_=PROBLEM_TYPE_PREFIX + "validation-error",
        detail=f"The request has {len(errors)} invalid field(s).",
        instance=instance,
        errors=errors,
    )


def _json_body_sent_as_another_type(request: Request, error: RequestValidationError) -> bool:
    """Whether the body failed only because the request did not say it is JSON. FastAPI reads a
    JSON body only under a JSON media type and otherwise validates the raw bytes, which fail
    as "not an object": a 422 about fields when what is wrong is the media type (RFC 9110
    §15.5.16). An empty body stays a missing one, whatever its type."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    if isinstance(route.body_field.field_info, params.Form):  # a form or an upload
        return False
    if not any(item["loc"][:1] == ("body",) for item in error.errors()):
        return False
    headers = request.headers
    sent_a_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    return sent_a_body and not is_json_media_type(headers.get("content-type"))


def is_json_media_type(content_type: str | None) -> bool:
    """application/json or application/*+json, with any parameters (as FastAPI reads them)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if _json_unreadable(error):
        return invalid_fields_response(
            request.url.path,
            [{"field": "body", "message": _UNREADABLE_JSON, "type": "json_invalid"}],
        )
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if error.detail and error.detail != phrase else None
    headers = dict(error.headers) if error.headers else {}
    if error.status_code == 405:
        headers = {name: value for name, value in headers.items() if name.lower() != "allow"}
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        error.status_code, detail=detail, instance=request.url.path, headers=headers or None
    )


_UNREADABLE_JSON = (
    "The body is not JSON text: it must be UTF-8 (RFC 8259 §8.1) and nested at most a few "
    "hundred levels deep."
)


def _json_unreadable(error: StarletteHTTPException) -> bool:
    """Whether FastAPI failed to read a JSON body for a reason other than its syntax. It turns a
    syntax error into a 422 of its own but any other failure of the parser (bytes that are not
    UTF-8, nesting deeper than the parser's recursion) into a bare 400; both are a body that is
    not JSON text, and answered alike."""
    return error.status_code == 400 and isinstance(
        error.__cause__, UnicodeDecodeError | RecursionError
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
