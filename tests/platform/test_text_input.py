"""U+0000 and lone surrogates are a 422 naming the field wherever they appear; deep JSON is a 422
before it is parsed. None of them reaches the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from skilltree.platform.http.text_input import MAX_JSON_DEPTH, json_depth_exceeds
from tests.support.accounts import PASSWORD, Browser
from tests.support.progress import WEB, import_roadmap

People = Callable[[str], Awaitable[Browser]]
JSON = {"content-type": "application/json"}


def fields_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud800", "x\\udfffy"])
async def test_registration_with_an_unstorable_display_name_is_a_422_and_creates_nobody(
    client: httpx.AsyncClient, outbox: Path, text: str
) -> None:
    body = f'{{"email": "ada@example.org", "password": "{PASSWORD}", "display_name": "{text}"}}'

    response = await client.post("/v1/auth/register", content=body, headers=JSON)

    assert fields_of(response) == ["body.display_name"]
    assert not any(outbox.glob("*.eml"))  # noqa: ASYNC240  (a temporary folder)


async def test_the_answer_is_the_same_for_an_existing_e_mail(
    client: httpx.AsyncClient, people: People
) -> None:
    await people("Ada")
    body = f'{{"email": "ada@example.org", "password": "{PASSWORD}", "display_name": "a\\u0000"}}'

    response = await client.post("/v1/auth/register", content=body, headers=JSON)

    assert fields_of(response) == ["body.display_name"]


async def test_a_nul_in_a_query_filter_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/roadmaps?title[contains]=a%00b")

    assert fields_of(response) == ["query.title[contains]"]


async def test_a_nul_in_a_path_is_a_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/a%00b/badges/web.svg")

    assert fields_of(response) == ["path.handle"]


async def test_nested_fields_and_keys_are_named(people: People) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB)
    body = '{"title": "T", "tags": ["ok", "bad\\ud83d"], "summary": "s\\u0000"}'

    response = await ada.client.post(
        "/v1/roadmaps/web/topics", content=body, headers=JSON | ada.write_headers
    )

    assert sorted(fields_of(response)) == ["body.summary", "body.tags[1]"]
    tree = await ada.client.get("/v1/roadmaps/web")
    assert tree.json()["topic_count"] == 7


async def test_a_note_with_a_lone_surrogate_is_refused(people: People) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB)

    response = await ada.client.put(
        "/v1/me/progress/web/etags/note",
        content='{"markdown": "\\udc00"}',
        headers=JSON | ada.write_headers,
    )

    assert fields_of(response) == ["body.markdown"]


async def test_a_nul_in_the_body_of_a_delete_is_refused_and_deletes_nothing(
    people: People,
) -> None:
    """DELETE /v1/me takes a body (the password): it is checked like any other."""
    ada = await people("Ada")

    response = await ada.client.request(
        "DELETE", "/v1/me", content='{"password": "a\\u0000b"}', headers=JSON | ada.write_headers
    )

    assert fields_of(response) == ["body.password"]
    assert (await ada.client.get("/v1/me")).status_code == 200


async def test_an_escaped_backslash_before_u0000_is_ordinary_text(people: People) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB)

    response = await ada.client.put(
        "/v1/me/progress/web/etags/note",
        content='{"markdown": "write \\\\u0000 for NUL"}',
        headers=JSON | ada.write_headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["markdown"] == "write \\u0000 for NUL"


async def test_a_nul_byte_in_a_markdown_import_is_refused(people: People) -> None:
    ada = await people("Ada")

    response = await ada.client.post(
        "/v1/roadmaps/import",
        content=b"# Plan\n\n## A\x00\n",
        headers={"content-type": "text/markdown"} | ada.write_headers,
    )

    assert fields_of(response) == ["body"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
async def test_a_json_import_nested_deep_is_a_422_before_parsing(
    people: People, depth: int
) -> None:
    ada = await people("Ada")
    body = "[" * depth + "]" * depth

    response = await ada.client.post(
        "/v1/roadmaps/import", content=body, headers=JSON | ada.write_headers
    )

    assert fields_of(response) == ["body"]
    assert "nested deeper" in response.json()["errors"][0]["message"]


def test_depth_counts_brackets_outside_strings_only() -> None:
    shallow = b'{"a": "' + b"[" * 500 + b'"}'
    deep = b'{"a": ' * 70 + b"1" + b"}" * 70

    assert not json_depth_exceeds(shallow)
    assert json_depth_exceeds(deep)
    assert not json_depth_exceeds(b"[" * 64 + b"]" * 64)


async def test_a_yaml_import_nested_deep_is_an_import_error_not_a_500(people: People) -> None:
    ada = await people("Ada")
    body = "[" * 5000 + "]" * 5000

    response = await ada.client.post(
        "/v1/roadmaps/import",
        content=body,
        headers={"content-type": "application/yaml"} | ada.write_headers,
    )

    assert response.status_code == 422, response.text
