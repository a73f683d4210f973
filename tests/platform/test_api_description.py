"""The OpenAPI document says how to authenticate, per operation, and what a 422 looks like."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.config import Settings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def test_the_three_credentials_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["bearerAccessToken"] == schemes["bearerAccessToken"] | {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert schemes["personalApiKey"]["scheme"] == "bearer"
    assert schemes["sessionCookie"] | {"in": "cookie"} == schemes["sessionCookie"]


def test_each_operation_names_the_credentials_it_accepts(document: dict[str, Any]) -> None:
    paths = document["paths"]
    every = [{"bearerAccessToken": []}, {"personalApiKey": []}, {"sessionCookie": []}]

    assert paths["/v1/me"]["get"]["security"] == every
    assert paths["/v1/roadmaps"]["get"]["security"] == [{}, *every]  # signed in or not
    assert paths["/v1/me/api-keys"]["post"]["security"] == [
        {"bearerAccessToken": []},
        {"sessionCookie": []},
    ]
    assert paths["/v1/auth/login"]["post"]["security"] == []


def test_every_422_is_described_as_problem_json(document: dict[str, Any]) -> None:
    text = orjson.dumps(document).decode()
    described = [
        operation["responses"]["422"]["content"]
        for operations in document["paths"].values()
        for operation in operations.values()
        if "422" in operation["responses"]
    ]

    assert "HTTPValidationError" not in text
    assert described
    assert all(list(content) == ["application/problem+json"] for content in described)


async def test_operations_that_need_credentials_refuse_anonymous_callers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    wrong = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security", [])
            if not security or {} in security:
                continue
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            response = await client.request(method.upper(), concrete, json={})
            if response.status_code != 401:
                wrong.append(f"{method.upper()} {path}: {response.status_code}")

    assert wrong == []
