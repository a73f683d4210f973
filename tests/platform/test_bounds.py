"""Every integer a client sends is bounded: out-of-range ids and offsets are a 422, not a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from skilltree.app import create_app
from skilltree.platform.config import Settings
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


def unbounded_integers(document: dict[str, Any]) -> Iterator[str]:
    schemas = document["components"]["schemas"]

    def walk(schema: Any, where: str, seen: frozenset[str]) -> Iterator[str]:
        if not isinstance(schema, dict):
            return
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                yield from walk(schemas[name], f"{where} {name}", seen | {name})
            return
        if schema.get("type") == "integer" and "maximum" not in schema and "enum" not in schema:
            yield where
        for name, value in schema.get("properties", {}).items():
            yield from walk(value, f"{where}.{name}", seen)
        yield from walk(schema.get("items"), f"{where}[]", seen)
        for variant in [*schema.get("anyOf", []), *schema.get("oneOf", [])]:
            yield from walk(variant, where, seen)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']}.{parameter['name']}"
                yield from walk(parameter.get("schema"), where, frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(content.get("schema"), f"{method.upper()} {path} body", frozenset())


def test_every_integer_input_has_a_maximum() -> None:
    document = create_app(Settings()).openapi()

    assert list(unbounded_integers(document)) == []


@pytest.mark.parametrize("number", [2**31, 2**63, 2**64, 10**30])
async def test_an_id_past_the_column_range_is_a_422(people: People, number: int) -> None:
    ada = await people("Ada")

    response = await ada.client.delete(f"/v1/me/api-keys/{number}", headers=ada.write_headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "path.key_id"


async def test_an_id_in_a_body_past_the_column_range_is_a_422(people: People) -> None:
    ada = await people("Ada")
    created = await ada.client.post(
        "/v1/orgs", json={"slug": "team", "name": "Team"}, headers=ada.write_headers
    )
    assert created.status_code == 201

    response = await ada.client.post(
        "/v1/orgs/team/transfer-ownership", json={"user_id": 2**31}, headers=ada.write_headers
    )

    assert response.status_code == 422, response.text


async def test_an_offset_past_any_page_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/roadmaps", params={"offset": 2**63})

    assert response.status_code == 422, response.text
