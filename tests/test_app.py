"""The application as a whole: versioned routes, documented errors, injected resources."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import Resources

# Routes for orchestrators and tooling live outside the versioned API on purpose.
# Operational endpoints whose shape the orchestrator or Prometheus defines, not the API.
UNVERSIONED = {"/livez", "/readyz", "/metrics"}


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
