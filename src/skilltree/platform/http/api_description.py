"""The OpenAPI document, told the truth about what the middleware and dependencies do.

FastAPI describes each operation from its own parameters; two things it cannot see:
- who may call: the credentials a route accepts come from dependencies deep in its tree
  (`signed_in`, the optional sign-in of public routes, the account owner's sign-in that refuses
  API keys). Each operation gets its `security` from the dependencies it really has, against
  three schemes: a bearer access token (JWT), a personal API key (also a bearer token, `sk_…`),
  and the browser session cookie (with its CSRF header on unsafe requests);
- what a 422 looks like: every validation error is rendered as problem+json (problems.py), not
  as FastAPI's `HTTPValidationError`;
- the other problems an operation can answer, from what it takes: credentials (401, 403), a
  path parameter (404), a body (400 unparsable, 413 too large, 415 a JSON body sent as another
  media type, 422), Idempotency-Key (400, 409
  in flight, 422 reused), If-Match (412 stale, 428 missing: the header is then required), and
  the rate limit on every /v1 route (429). Statuses a route declares itself keep its wording;
- when the service it needs is down: every operation that reaches the database or Redis (a unit
  of work, a credential to look up, an Idempotency-Key to claim, sign-in's rate limit, which
  fails closed) can answer 503 problem+json with Retry-After, for an outage (outages.py) or for
  load shedding when every database connection is busy and the line is full (fair_pool.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from skilltree.platform.http.conditional import if_match_header, upsert_headers
from skilltree.platform.http.idempotency import idempotency_key_header
from skilltree.platform.http.problems import PROBLEM_MEDIA_TYPE, Problem, is_json_media_type
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import get_session

BEARER = "bearerAccessToken"
API_KEY = "personalApiKey"
SESSION = "sessionCookie"


def not_null(schema: dict[str, Any]) -> None:
    """A field's `json_schema_extra` for an optional field that refuses null when sent (null
    is how the model marks "not sent"): its description leaves the null out."""
    choices = schema.pop("anyOf", None)
    if choices is None:
        return
    kept = [choice for choice in choices if choice != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def security_schemes(session_cookie: str) -> dict[str, Any]:
    return {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /v1/auth/token (10 minutes; refresh it).",
        },
        API_KEY: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_<prefix>_<secret>",
            "description": "A personal API key (POST /v1/me/api-keys), limited to its scopes.",
        },
        SESSION: {
            "type": "apiKey",
            "in": "cookie",
            "name": session_cookie,
            "description": "The browser session from POST /v1/auth/login; unsafe requests also "
            "send its CSRF token in X-CSRF-Token.",
        },
    }


def describe(
    app: FastAPI,
    *,
    session_cookie: str,
    required: Callable[..., Any],
    optional: Callable[..., Any],
    no_api_keys: Callable[..., Any],
    storage: Collection[Callable[..., Any]] = (),
) -> None:
    """Make `app.openapi()` add the security schemes, each operation's security, and 422s as
    problem+json. The functions name the dependencies that mean "signed in", "signed in if
    credentials were sent" and "signed in, but not with an API key"; `storage` names others
    that reach the database or Redis without the request's unit of work (GraphQL's context)."""
    storage_calls = {get_session, *storage}
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {})
        components["securitySchemes"] = security_schemes(session_cookie)
        for path, method, calls in _operations(app):
            operation = document["paths"].get(path, {}).get(method)
            if operation is None:
                continue
            if no_api_keys in calls:
                operation["security"] = [{BEARER: []}, {SESSION: []}]
            elif required in calls:
                operation["security"] = [{BEARER: []}, {API_KEY: []}, {SESSION: []}]
            elif optional in calls:
                operation["security"] = [{}, {BEARER: []}, {API_KEY: []}, {SESSION: []}]
            else:
                operation["security"] = []
            statuses = _problem_statuses(path, method, operation, calls)
            _add_problems(operation, statuses)
            if _reaches_storage(path, method, operation, calls, storage_calls):
                operation["responses"].setdefault("503", _unavailable())
            if if_match_header in calls:
                _require_header(operation, "if-match")
        _validation_errors_as_problems(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(app: FastAPI) -> list[tuple[str, str, set[Callable[..., Any]]]]:
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path_format is None:
            continue
        calls = _calls(route.dependant)
        for method in route.methods or ():
            found.append((route.path_format, method.lower(), calls))
    return found


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    calls: set[Callable[..., Any]] = set()
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            calls.add(dependency.call)
        calls |= _calls(dependency)
    return calls


UNSAFE_METHODS = frozenset({"post", "put", "patch", "delete"})


def _problem_statuses(
    path: str, method: str, operation: dict[str, Any], calls: set[Callable[..., Any]]
) -> set[int]:
    """The problem statuses the middleware and the operation's dependencies can answer."""
    statuses: set[int] = set()
    security = operation.get("security", [])
    if security:
        statuses.add(401)  # a missing, expired or revoked credential; a malformed token
        if {} not in security or method in UNSAFE_METHODS:
            statuses.add(403)  # a scope or role missing; a session's CSRF token missing
    if "{" in path:
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
        if any(map(is_json_media_type, operation["requestBody"].get("content", {}))):
            statuses.add(415)  # the body sent as another media type (problems.py)
    if operation.get("parameters"):
        statuses.add(422)
    if idempotency_key_header in calls:
        statuses |= {400, 409, 422}
    if if_match_header in calls or upsert_headers in calls:
        statuses |= {412, 428}
    if path.startswith(API_PREFIX + "/"):
        statuses.add(429)
    return statuses


def _reaches_storage(
    path: str,
    method: str,
    operation: dict[str, Any],
    calls: set[Callable[..., Any]],
    storage_calls: set[Callable[..., Any]],
) -> bool:
    """Whether the operation needs the database or Redis, and so can meet one that is down."""
    return bool(
        calls & storage_calls
        or operation.get("security")  # credentials are looked up (sessions, keys, revocations)
        or idempotency_key_header in calls  # the key is claimed in the store
        or (method in UNSAFE_METHODS and path.startswith(f"{API_PREFIX}/auth/"))  # fails closed
    )


def _unavailable() -> dict[str, Any]:
    return {
        "description": "Service Unavailable: the database or Redis cannot be reached, or every "
        "database connection is busy and the line of waiting requests is full (load shedding). "
        "Retry after the seconds in Retry-After.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _add_problems(operation: dict[str, Any], statuses: set[int]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses.setdefault(
            str(status),
            {
                "description": HTTPStatus(status).phrase,
                "content": {
                    PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            },
        )


def _require_header(operation: dict[str, Any], name: str) -> None:
    """The server answers 428 without it: say it is required (it is checked after the 401 and
    404 checks, so it is not declared required to FastAPI, which would answer 422 first)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == name:
            parameter["required"] = True
            schema = parameter.get("schema", {})
            options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
            if len(options) == 1:  # `str | None` in Python; the document now promises a string
                parameter["schema"] = {
                    **options[0],
                    **{k: v for k, v in schema.items() if k != "anyOf"},
                }


def _validation_errors_as_problems(document: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    schemas = document["components"].setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    for operations in document["paths"].values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
