"""Every error is RFC 9457 problem+json: domain errors, validation, HTTP errors and bugs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from skilltree.platform.config import LogSettings
from skilltree.platform.errors import Conflict
from skilltree.platform.http.middleware import RequestIdMiddleware, UnhandledErrorMiddleware
from skilltree.platform.http.problems import field_path, install_problem_handlers
from skilltree.platform.observability.logging import configure_logging

PROBLEM = "application/problem+json"


class Payload(BaseModel):
    title: str
    tags: list[int]


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("The name is taken.", name="x")

    @app.post("/items")
    async def create(payload: Payload) -> dict[str, str]:
        return {"title": payload.title}

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("database password is hunter2")

    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_domain_error_carries_its_status_type_and_extensions(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/conflict")

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "The name is taken.",
        "instance": "/conflict",
        "request_id": response.headers["x-request-id"],
        "name": "x",
    }


async def test_validation_error_lists_the_path_of_each_bad_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json={"tags": [1, "two"]})

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert {(e["field"], e["type"]) for e in problem["errors"]} == {
        ("body.title", "missing"),
        ("body.tags[1]", "int_parsing"),
    }


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
async def test_a_json_body_sent_as_another_media_type_is_a_415_problem(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    # The body is valid JSON; what is wrong is what the request says it is (RFC 9110 §15.5.16).
    headers = {} if content_type is None else {"content-type": content_type}
    request = client.build_request(
        "POST", "/items", content=b'{"title": "x", "tags": []}', headers=headers
    )
    assert content_type is not None or "content-type" not in request.headers

    response = await client.send(request)

    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/unsupported-media-type"
    assert problem["instance"] == "/items"
    assert "application/json" in problem["detail"]


async def test_a_json_media_type_with_parameters_or_a_suffix_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            "/items", content=b'{"title": "x", "tags": []}', headers={"content-type": content_type}
        )
        assert response.status_code == 200, content_type


async def test_an_empty_body_is_missing_whatever_its_media_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", content=b"", headers={"content-type": "text/plain"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "missing"


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "\xff\xfe", "tags": []}',  # not UTF-8 (RFC 8259 §8.1)
        b"\xff\xfe\x00",
        b"\xc3\x28",
        b"[" * 100_000,  # nested deeper than the parser goes
    ],
)
async def test_a_body_that_is_not_json_text_is_invalid_json_like_any_other(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/items", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("body", "json_invalid")]


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "about:blank"
    assert response.json()["title"] == "Not Found"


async def test_wrong_method_is_a_405_problem_that_keeps_the_allow_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/conflict")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"  # HEAD is answered wherever GET is
    assert response.json()["title"] == "Method Not Allowed"


async def test_unhandled_error_is_a_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/bug", headers={"x-request-id": "trace-me-123"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["request_id"] == "trace-me-123"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


async def test_unhandled_error_is_logged_once_with_traceback_and_request_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))

    await client.get("/bug", headers={"x-request-id": "trace-me-456"})

    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    errors = [line for line in lines if line["event"] == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "trace-me-456"
    assert errors[0]["level"] == "error"
    assert "RuntimeError: database password is hunter2" in errors[0]["exception"]


def test_field_path_renders_indexes_in_brackets() -> None:
    assert (
        field_path(("body", "topics", 2, "children", 0, "title"))
        == "body.topics[2].children[0].title"
    )
    assert field_path(("query", "limit")) == "query.limit"
