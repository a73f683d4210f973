"""The OpenAPI document, told the truth about what the middleware and dependencies do.

FastAPI describes each operation from its own parameters; two things it cannot see:
- who may call: the credentials a route accepts come from dependencies deep in its tree
  (`signed_in`, the optional sign-in of public routes, the account owner's sign-in that refuses
  API keys). Each operation gets its `security` from the dependencies it really has, against
  three schemes: a bearer access token (JWT), a personal API key (also a bearer token, `sk_…`),
  and the browser session cookie (with its CSRF header on unsafe requests);
- what a 422 looks like: every validation error is rendered as problem+json (problems.py), not
  as FastAPI's `HTTPValidationError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from skilltree.platform.http.problems import PROBLEM_MEDIA_TYPE, Problem

BEARER = "bearerAccessToken"
API_KEY = "personalApiKey"
SESSION = "sessionCookie"


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
) -> None:
    """Make `app.openapi()` add the security schemes, each operation's security, and 422s as
    problem+json. The functions name the dependencies that mean "signed in", "signed in if
    credentials were sent" and "signed in, but not with an API key"."""
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
