"""The application as a whole: versioned routes, documented errors, injected resources."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from skilltree.app import create_app, create_app_from_environment
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import Resources

# Routes for orchestrators and tooling live outside the versioned API on purpose.
# Operational endpoints whose shape the orchestrator or Prometheus defines, not the API.
UNVERSIONED = {"/livez", "/readyz", "/startupz", "/metrics"}
# A GraphQL schema evolves by deprecating fields, not by versioned URLs (decision 0049).
UNVERSIONED |= {"/graphql", "/graphql/ide/{name}"}


def test_every_api_route_is_versioned() -> None:
    paths = set(create_app(Settings()).openapi()["paths"])

    assert paths - UNVERSIONED
    assert all(path.startswith(f"{API_PREFIX}/") for path in paths - UNVERSIONED)


def test_openapi_documents_problem_responses() -> None:
    schema = create_app(Settings()).openapi()

    tree = schema["paths"]["/v1/roadmaps/{slug}/tree"]["get"]["responses"]
    assert "application/problem+json" in tree["404"]["content"]
    imports = schema["paths"]["/v1/roadmaps/import"]["post"]["responses"]
    assert {"409", "413", "415", "422"} <= set(imports)
    assert schema["openapi"].startswith("3.1")


def test_no_route_or_dependency_runs_in_a_worker_thread() -> None:
    """FastAPI runs a plain `def` endpoint or dependency in a thread pool: a hop to another
    thread and back on each request, for work that never blocks."""
    app = create_app(Settings())
    synchronous = {
        f"{call.__module__}.{call.__qualname__}"
        for route in _api_routes(app.router.routes)
        for call in [route.endpoint, *_dependency_calls(route.dependant)]
        if not _is_async(call)
    }

    assert synchronous == set()


def test_the_server_entry_point_keeps_startup_objects_out_of_garbage_collection() -> None:
    assert gc.get_freeze_count() == 0
    try:
        create_app_from_environment()

        assert gc.get_freeze_count() > 100_000
    finally:
        gc.unfreeze()


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # a router added by include_router
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _dependency_calls(dependency)


def _is_async(call: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


async def test_the_app_uses_the_database_it_is_given(app: FastAPI, database: Database) -> None:
    resources: Resources = app.state.resources

    assert resources.database is database


async def test_openapi_document_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = await client.get("/openapi.json")
    docs = await client.get("/docs")

    assert spec.status_code == 200
    assert "/v1/roadmaps/{slug}/tree" in spec.json()["paths"]
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


async def test_the_app_starts_and_stops_through_the_asgi_lifespan_a_server_sends(
    settings: Settings, database: Database
) -> None:
    """As uvicorn starts it: the lifespan messages through the app's own `__call__` (every
    layer in front of the application sees them). A layer that fails on a lifespan scope
    makes a server carry on without the app's resources, and every request a 500."""
    app = create_app(settings, database=database)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            assert isinstance(app.state.resources, Resources)
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
