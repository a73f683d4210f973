"""The OpenAPI document says how to authenticate, per operation, and what a 422 looks like."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema
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


def _problem_statuses(operation: dict[str, Any]) -> set[int]:
    return {
        int(status)
        for status, response in operation["responses"].items()
        if "application/problem+json" in response.get("content", {})
    }


def test_each_operation_lists_the_problems_it_can_answer(document: dict[str, Any]) -> None:
    paths = document["paths"]

    # Signed in, with a body, a path parameter and If-Match: every check has its status.
    assert {400, 401, 403, 404, 412, 413, 422, 428, 429} <= _problem_statuses(
        paths["/v1/roadmaps/{slug}"]["patch"]
    )
    # A creating route that takes Idempotency-Key: malformed (400), in flight (409), reused (422).
    assert {400, 401, 403, 409, 413, 422, 429} <= _problem_statuses(paths["/v1/roadmaps"]["post"])
    # A JSON body sent as another media type is a 415.
    assert 415 in _problem_statuses(paths["/v1/roadmaps"]["post"])
    assert 415 in _problem_statuses(paths["/v1/roadmaps/{slug}"]["patch"])
    # Public and signed in if credentials were sent: a bad token is still a 401.
    assert {401, 422, 429} <= _problem_statuses(paths["/v1/roadmaps"]["get"])
    # Health probes are not rate limited and take no credentials.
    assert _problem_statuses(paths["/livez"]["get"]) == set()


def test_operations_that_need_storage_list_503_with_retry_after(document: dict[str, Any]) -> None:
    """What an outage or load shedding answers (tests/platform/test_outages.py calls every
    operation with the database down and checks each 503 it meets is listed)."""
    paths = document["paths"]
    unavailable = paths["/v1/roadmaps"]["get"]["responses"]["503"]

    assert list(unavailable["content"]) == ["application/problem+json"]
    assert unavailable["headers"]["Retry-After"]["required"] is True
    assert "503" in paths["/v1/auth/login"]["post"]["responses"]  # sign-in's limit fails closed
    assert "503" in paths["/graphql"]["post"]["responses"]
    # Liveness touches nothing external; readiness describes its own 503 (no Retry-After).
    assert "503" not in paths["/livez"]["get"]["responses"]
    assert "headers" not in paths["/readyz"]["get"]["responses"]["503"]


def test_every_signed_in_operation_documents_401_and_403(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
        and {} not in operation["security"]
        and not {401, 403} <= _problem_statuses(operation)
    ]

    assert missing == []


def _header(operation: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next(
        (
            parameter
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "header" and parameter["name"].lower() == name
        ),
        None,
    )


def test_the_idempotency_key_header_says_what_the_server_accepts(
    document: dict[str, Any],
) -> None:
    header = _header(document["paths"]["/v1/roadmaps"]["post"], "idempotency-key")

    assert header is not None
    schema = header["schema"]
    if "anyOf" in schema:
        [schema] = [option for option in schema["anyOf"] if option.get("type") == "string"]
    assert schema["minLength"] == 1
    assert schema["maxLength"] == 255
    assert re.fullmatch(schema["pattern"], "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert not re.fullmatch(schema["pattern"], "clé")  # non-ASCII is refused with 400
    assert not re.fullmatch(schema["pattern"], "a\tb")  # so are control characters


def test_if_match_is_required_where_its_absence_is_a_428(document: dict[str, Any]) -> None:
    paths = document["paths"]
    replace = _header(paths["/v1/roadmaps/{slug}"]["patch"], "if-match")

    assert replace is not None
    assert replace["required"] is True
    assert 428 in _problem_statuses(paths["/v1/roadmaps/{slug}"]["patch"])


def test_a_second_factor_answer_is_described_as_exactly_one_of_code_and_recovery_code(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/v1/auth/login/mfa"]["post"]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[-1]]

    def valid(body: dict[str, Any]) -> bool:
        return jsonschema.Draft202012Validator(schema).is_valid(body)

    assert valid({"mfa_token": "t" * 16, "code": "123456"})
    assert valid({"mfa_token": "t" * 16, "recovery_code": "abcd-efgh"})
    assert not valid({"mfa_token": "t" * 16})  # the server answers 422: neither was sent
    assert not valid({"mfa_token": "t" * 16, "code": "123456", "recovery_code": "abcd-efgh"})
    assert not valid({"mfa_token": "t" * 16, "code": None, "recovery_code": None})


def test_filter_values_the_server_accepts_are_enumerated(document: dict[str, Any]) -> None:
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/v1/roadmaps"]["get"]["parameters"]
    }

    # Anything else (an empty value included) is a 400 invalid-query.
    assert parameters["source"]["enum"] == ["builtin", "import", "custom", "fork"]
    assert parameters["visibility"]["enum"] == ["public", "organisation", "private"]


def test_a_time_filter_is_described_as_the_date_time_the_server_takes(
    document: dict[str, Any],
) -> None:
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/v1/roadmaps"]["get"]["parameters"]
    }

    # A plain string would promise that any text (an empty one included) is accepted; the
    # server answers anything but an RFC 3339 date-time with a 400 invalid-query.
    assert parameters["updated_at[gte]"] == {"type": "string", "format": "date-time"}
