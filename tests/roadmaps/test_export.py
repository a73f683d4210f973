"""Exporting a roadmap: Accept picks markdown, JSON or CSV; `format` overrides it; 406 otherwise."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.accounts import Browser

EXPORT = "/v1/roadmaps/caching/export"
DOCUMENT: dict[str, Any] = {
    "slug": "caching",
    "title": "Caching",
    "topics": [
        {
            "slug": "http",
            "title": "HTTP caching",
            "level": "beginner",
            "children": [
                {"slug": "etags", "title": "ETags", "level": "intermediate", "estimate_hours": 1.5},
                {"slug": "vary", "title": "=Vary", "estimate_hours": 2},
            ],
        }
    ],
}


@pytest.fixture
async def client(people: Callable[[str], Awaitable[Browser]]) -> httpx.AsyncClient:
    author = await people("Author")
    response = await author.client.post(
        "/v1/roadmaps/import", json=DOCUMENT, headers=author.write_headers
    )
    assert response.status_code == 201, response.text
    return author.client


async def export(client: httpx.AsyncClient, accept: str | None = None, **params: str) -> Any:
    headers = {} if accept is None else {"accept": accept}
    return await client.get(EXPORT, headers=headers, params=params)


@pytest.mark.parametrize(
    ("accept", "content_type", "extension"),
    [
        ("text/markdown", "text/markdown; charset=utf-8", "md"),
        ("application/json", "application/json", "json"),
        ("text/csv", "text/csv; charset=utf-8", "csv"),
    ],
)
async def test_accept_picks_the_format(
    client: httpx.AsyncClient, accept: str, content_type: str, extension: str
) -> None:
    response = await export(client, accept)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"] == f'attachment; filename="caching.{extension}"'
    assert "Accept" in response.headers["vary"].split(", ")


@pytest.mark.parametrize("accept", [None, "*/*", "text/*"])
async def test_markdown_is_the_default(client: httpx.AsyncClient, accept: str | None) -> None:
    response = await export(client, accept)

    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.text.startswith("# Caching\n")


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("text/markdown;q=0.5, application/json", "application/json"),
        ("text/*;q=0.3, text/csv;q=0.9, application/json;q=0.8", "text/csv; charset=utf-8"),
        ("application/json;q=0.1, text/markdown;q=0", "application/json"),
        ("*/*;q=0.5, text/markdown;q=0.4, text/csv;q=0.4", "application/json"),
    ],
)
async def test_q_values_rank_the_formats(
    client: httpx.AsyncClient, accept: str, content_type: str
) -> None:
    response = await export(client, accept)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    "accept", ["application/xml", "text/markdown;q=0, application/json;q=0, text/csv;q=0", "x"]
)
async def test_no_acceptable_format_is_a_406_problem_listing_the_available_ones(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await export(client, accept)

    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/not-acceptable"
    assert problem["available"] == ["text/markdown", "application/json", "text/csv"]


@pytest.mark.parametrize(
    ("format", "content_type"),
    [
        ("json", "application/json"),
        ("csv", "text/csv; charset=utf-8"),
        ("markdown", "text/markdown; charset=utf-8"),
    ],
)
async def test_the_format_parameter_overrides_accept(
    client: httpx.AsyncClient, format: str, content_type: str
) -> None:
    response = await export(client, "application/xml", format=format)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


async def test_an_unknown_format_parameter_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await export(client, format="xml")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.format"


async def test_the_csv_has_one_row_per_topic_with_path_title_level_and_estimate(
    client: httpx.AsyncClient,
) -> None:
    response = await export(client, "text/csv")

    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["path", "title", "level", "estimate_hours"],
        ["http", "HTTP caching", "beginner", ""],
        ["http/etags", "ETags", "intermediate", "1.5"],
        # A title a spreadsheet would run as a formula is defused.
        ["http/vary", "'=Vary", "", "2"],
    ]


async def test_a_406_is_answered_even_for_a_roadmap_you_cannot_see(
    people: Callable[[str], Awaitable[Browser]], client: httpx.AsyncClient
) -> None:
    """Negotiation comes first and says nothing about the roadmap: no existence leak."""
    eve = await people("Eve")

    hidden = await eve.client.get(EXPORT, headers={"accept": "application/xml"})
    missing = await eve.client.get("/v1/roadmaps/nope/export", headers={"accept": "image/png"})

    assert hidden.status_code == missing.status_code == 406
    assert (await eve.client.get(EXPORT)).status_code == 404


async def test_a_stored_checklist_exports_its_tasks_and_plain_bullets_as_written(
    people: Callable[[str], Awaitable[Browser]],
) -> None:
    author = await people("Writer")
    source = (
        "# Reading\n\n## Books\n\n"
        "- Designing Data-Intensive Applications\n  - Chapter one\n  - [ ] Exercise one\n"
        "- [ ] Write a summary\n"
    )
    imported = await author.client.post(
        "/v1/roadmaps/import",
        content=source.encode(),
        headers={**author.write_headers, "content-type": "text/markdown"},
        params={"slug": "reading"},
    )
    assert imported.status_code == 201, imported.text

    exported = await author.client.get(
        "/v1/roadmaps/reading/export", headers={"accept": "text/markdown"}
    )

    assert exported.text == source
