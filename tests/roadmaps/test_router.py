"""The roadmaps API as a client sees it, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.db import Database
from skilltree.roadmaps import service
from skilltree.roadmaps.importing import ParsedRoadmap
from skilltree.roadmaps.policies import OPERATOR
from tests.support.accounts import Browser
from tests.support.queries import count_statements

CHECKLIST = """\
# Practice roadmap

## HTTP

- [ ] Status codes - what each class means
- [x] Caching
  - [ ] ETags
  - [ ] Cache-Control

## Databases

- [ ] Indexes
"""

MARKDOWN = {"content-type": "text/markdown"}


@pytest.fixture
async def client(people: Callable[[str], Awaitable[Browser]]) -> httpx.AsyncClient:
    """In this module every request comes from a signed-in author (imports need one); what
    anonymous visitors and other users see is tested in test_visibility.py."""
    author = await people("Author")
    author.client.headers.update(author.write_headers)
    return author.client


async def import_checklist(
    client: httpx.AsyncClient, text: str = CHECKLIST, **params: str
) -> httpx.Response:
    return await client.post(
        "/v1/roadmaps/import", content=text.encode(), headers=MARKDOWN, params=params
    )


async def test_import_creates_a_roadmap_and_points_to_it(client: httpx.AsyncClient) -> None:
    response = await import_checklist(client)

    assert response.status_code == 201
    assert response.headers["location"] == "/v1/roadmaps/practice-roadmap"
    report = response.json()
    assert report["created"] is True
    assert report["topic_count"] == 7
    assert sorted(report["changes"]["added"]) == sorted(
        ["http", "status-codes", "caching", "etags", "cache-control", "databases", "indexes"]
    )


async def test_tree_returns_the_nested_topics_in_order(client: httpx.AsyncClient) -> None:
    await import_checklist(client)

    response = await client.get("/v1/roadmaps/practice-roadmap/tree")

    assert response.status_code == 200
    tree = response.json()
    assert tree["roadmap"]["topic_count"] == 7
    sections = tree["topics"]
    assert [s["title"] for s in sections] == ["HTTP", "Databases"]
    http_children = sections[0]["children"]
    assert [c["title"] for c in http_children] == ["Status codes", "Caching"]
    assert http_children[0]["summary"] == "what each class means"
    assert [c["slug"] for c in http_children[1]["children"]] == ["etags", "cache-control"]


async def test_dry_run_previews_the_tree_and_writes_nothing(client: httpx.AsyncClient) -> None:
    response = await import_checklist(client, dry_run="true")

    assert response.status_code == 200
    report = response.json()
    assert report["dry_run"] is True
    assert [node["title"] for node in report["preview"]] == ["HTTP", "Databases"]
    assert report["preview"][0]["children"][1]["status"] == "done"
    assert (await client.get("/v1/roadmaps/practice-roadmap")).status_code == 404


async def test_reimporting_the_same_file_changes_nothing(client: httpx.AsyncClient) -> None:
    await import_checklist(client)

    report = (await import_checklist(client)).json()

    assert report["created"] is False
    assert report["version"] == 1
    assert report["changes"] == {"added": [], "updated": [], "removed": [], "unchanged": 7}


async def test_reimporting_an_edited_file_changes_only_what_changed(
    client: httpx.AsyncClient,
) -> None:
    await import_checklist(client)
    edited = CHECKLIST.replace("- [ ] Indexes", "- [ ] Indexes - B-trees and more\n- [ ] Joins")
    edited = edited.replace("  - [ ] Cache-Control\n", "")

    response = await import_checklist(client, edited)

    assert response.status_code == 200
    report = response.json()
    assert report["version"] == 2
    assert report["changes"]["added"] == ["joins"]
    assert report["changes"]["updated"] == [{"slug": "indexes", "fields": ["summary"]}]
    assert report["changes"]["removed"] == ["cache-control"]
    assert report["changes"]["unchanged"] == 5


async def test_import_accepts_a_multipart_file(client: httpx.AsyncClient) -> None:
    files = {"file": ("practice.md", CHECKLIST.encode(), "text/markdown")}

    response = await client.post("/v1/roadmaps/import", files=files)

    assert response.status_code == 201
    assert response.json()["roadmap"] == "practice-roadmap"


async def test_import_under_an_explicit_slug(client: httpx.AsyncClient) -> None:
    response = await import_checklist(client, slug="my-http")

    assert response.status_code == 201
    assert (await client.get("/v1/roadmaps/my-http")).json()["title"] == "Practice roadmap"


async def test_json_export_reimports_to_the_same_tree(client: httpx.AsyncClient) -> None:
    await import_checklist(client)
    exported = await client.get("/v1/roadmaps/practice-roadmap/export", params={"format": "json"})
    assert exported.headers["content-type"] == "application/json"

    response = await client.post(
        "/v1/roadmaps/import",
        content=exported.content,
        headers={"content-type": "application/json"},
        params={"slug": "copy"},
    )

    assert response.status_code == 201
    original = (await client.get("/v1/roadmaps/practice-roadmap/tree")).json()["topics"]
    copy = (await client.get("/v1/roadmaps/copy/tree")).json()["topics"]
    assert copy == original


async def test_markdown_export_is_a_checklist_that_reimports(client: httpx.AsyncClient) -> None:
    await import_checklist(client)

    exported = await client.get("/v1/roadmaps/practice-roadmap/export")

    assert exported.headers["content-type"] == "text/markdown; charset=utf-8"
    assert exported.headers["content-disposition"] == 'attachment; filename="practice-roadmap.md"'
    assert "- [ ] Status codes — what each class means" in exported.text
    reimported = await import_checklist(client, exported.text, dry_run="true")
    assert reimported.json()["changes"]["unchanged"] == 7


async def test_topic_shows_its_place_in_the_tree(client: httpx.AsyncClient) -> None:
    await import_checklist(client)

    response = await client.get("/v1/roadmaps/practice-roadmap/topics/caching")

    assert response.status_code == 200
    topic = response.json()
    assert topic["path"] == [{"slug": "http", "title": "HTTP"}]
    assert [c["slug"] for c in topic["children"]] == ["etags", "cache-control"]


async def test_unknown_roadmap_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/roadmaps/nope/tree")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/roadmap-not-found"


async def test_unknown_topic_is_a_404_problem(client: httpx.AsyncClient) -> None:
    await import_checklist(client)

    response = await client.get("/v1/roadmaps/practice-roadmap/topics/nope")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/topic-not-found"


async def test_unsupported_media_type_is_a_415_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/roadmaps/import", content=b"\x89PNG", headers={"content-type": "image/png"}
    )

    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "expected_type", "expected_line"),
    [
        (b"", "/problems/invalid-roadmap", None),
        (b"# Title\n\njust prose, no list\n", "/problems/invalid-roadmap", None),
        # U+0000 is refused in every text body before a route sees it (http/text_input.py).
        (b"# T\n\n## S\n\n- ok\n- bad \x00 byte\n", "/problems/validation-error", None),
    ],
    ids=["empty", "no-topics", "binary"],
)
async def test_bad_input_is_a_422_problem_and_writes_nothing(
    client: httpx.AsyncClient, body: bytes, expected_type: str, expected_line: int | None
) -> None:
    response = await client.post("/v1/roadmaps/import", content=body, headers=MARKDOWN)

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == expected_type
    if expected_line is not None:
        assert problem["line"] == expected_line
    assert (await client.get("/v1/roadmaps")).json()["items"] == []


async def test_import_over_the_size_limit_is_a_413_problem(
    client: httpx.AsyncClient, app: object
) -> None:
    too_big = b"# T\n\n## S\n\n" + b"- item\n" * 200_000  # 1.4 MB > the 1 MiB default

    response = await client.post("/v1/roadmaps/import", content=too_big, headers=MARKDOWN)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_invalid_slug_parameter_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await import_checklist(client, slug="Not A Slug")

    assert response.status_code == 422
    fields = [error["field"] for error in response.json()["errors"]]
    assert fields == ["query.slug"]


async def test_list_shows_every_roadmap_with_links(client: httpx.AsyncClient) -> None:
    await import_checklist(client)

    items = (await client.get("/v1/roadmaps")).json()["items"]

    assert [(i["slug"], i["topic_count"], i["source"]) for i in items] == [
        ("practice-roadmap", 7, "import")
    ]
    assert items[0]["links"]["tree"] == "/v1/roadmaps/practice-roadmap/tree"


async def test_tree_query_count_does_not_grow_with_the_tree(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    small = "# Small\n\n## S\n\n- a\n"
    large = "# Large\n\n" + "".join(
        f"## Section {s}\n\n" + "".join(f"- Topic {s}.{t}\n  - Sub {s}.{t}\n" for t in range(20))
        for s in range(10)
    )
    await import_checklist(client, small, visibility="public")
    await import_checklist(client, large, visibility="public")

    with count_statements(engine) as small_tree:
        assert (await second_client.get("/v1/roadmaps/small/tree")).status_code == 200
    with count_statements(engine) as large_tree:
        response = await second_client.get("/v1/roadmaps/large/tree")
    with count_statements(engine) as signed_in_tree:
        assert (await client.get("/v1/roadmaps/large/tree")).status_code == 200

    assert response.json()["roadmap"]["topic_count"] == 410
    # Anonymous: the roadmap row and all its topics. Signed in: plus a constant few statements
    # that identify the caller (session, user, organisation roles).
    assert large_tree.count == small_tree.count == 2
    assert signed_in_tree.count <= 2 + 4


async def test_topic_query_count_does_not_grow_with_the_roadmap(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    small = "# Small\n\n## S\n\n- a\n  - b\n"
    large = "# Large\n\n## S\n\n- a\n  - b\n" + "".join(f"- Topic {n}\n" for n in range(300))
    await import_checklist(client, small, visibility="public")
    await import_checklist(client, large, visibility="public")

    counts = {}
    for slug in ("small", "large"):
        path = f"/v1/roadmaps/{slug}/topics/a"
        with count_statements(engine) as log:
            response = await second_client.get(path)
        assert response.status_code == 200
        assert response.json()["children"] == [{"slug": "b", "title": "b"}]
        with count_statements(engine) as revalidation:
            again = await second_client.get(
                path, headers={"if-none-match": response.headers["etag"]}
            )
        assert again.status_code == 304
        counts[slug] = (log.count, revalidation.count)

    # The roadmap row and its topics for the first answer; the public topic is then cached,
    # so the revalidation is answered without the database.
    assert counts["small"] == counts["large"] == (2, 0)


async def test_titles_that_look_like_sql_are_stored_as_plain_text(
    client: httpx.AsyncClient,
) -> None:
    hostile = "# Hostile\n\n## S\n\n- Robert'); DROP TABLE topics;--\n- 1' OR '1'='1\n"

    await import_checklist(client, hostile)

    tree = (await client.get("/v1/roadmaps/hostile/tree")).json()
    assert [t["title"] for t in tree["topics"][0]["children"]] == [
        "Robert'); DROP TABLE topics;--",
        "1' OR '1'='1",
    ]
    assert (await client.get("/v1/roadmaps")).json()["items"][0]["topic_count"] == 3


async def test_an_import_onto_the_builtin_roadmap_is_a_409_problem(
    client: httpx.AsyncClient, database: Database, builtin_roadmap: ParsedRoadmap
) -> None:
    async with database.unit_of_work() as session:
        await service.import_roadmap(session, builtin_roadmap, viewer=OPERATOR, source="builtin")

    response = await import_checklist(client, slug="backend")

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/builtin-roadmap-protected"
    assert (await client.get("/v1/roadmaps/backend")).json()["source"] == "builtin"


async def test_the_builtin_topic_page_shows_where_the_codebase_implements_it(
    client: httpx.AsyncClient, database: Database, builtin_roadmap: ParsedRoadmap
) -> None:
    async with database.unit_of_work() as session:
        await service.import_roadmap(session, builtin_roadmap, viewer=OPERATOR, source="builtin")

    topic = (await client.get("/v1/roadmaps/backend/topics/health-checks")).json()

    readyz = next(ref for ref in topic["implemented_in"] if ref["target"] == "GET /readyz")
    assert readyz["kind"] == "endpoint"
    assert readyz["path"] == "src/skilltree/platform/health.py"
    assert readyz["line_start"] <= readyz["line_end"]
    assert {ref["kind"] for ref in topic["implemented_in"]} == {"module", "endpoint", "test"}


async def test_the_old_outline_address_answers_with_deprecation_and_sunset_headers(
    client: httpx.AsyncClient,
) -> None:
    await import_checklist(client)

    old = await client.get("/v1/roadmaps/practice-roadmap/outline")
    new = await client.get("/v1/roadmaps/practice-roadmap/tree")

    assert old.status_code == 200
    assert old.json() == new.json()
    assert old.headers["deprecation"] == "@1795737600"  # 2026-11-27T00:00:00Z
    assert old.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert old.headers["link"] == '</v1/roadmaps/practice-roadmap/tree>; rel="successor-version"'
    assert "deprecation" not in new.headers


def test_the_deprecated_alias_is_marked_in_the_openapi_document(app: object) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    operation = app.openapi()["paths"]["/v1/roadmaps/{slug}/outline"]["get"]

    assert operation["deprecated"] is True


async def test_a_revalidated_public_tree_is_answered_from_the_cache_without_a_statement(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    small = "# Small\n\n## S\n\n- a\n"
    large = "# Large\n\n## S\n\n" + "".join(f"- Topic {n}\n  - Sub {n}\n" for n in range(200))
    await import_checklist(client, small, visibility="public")
    await import_checklist(client, large, visibility="public")
    etags = {
        slug: (await second_client.get(f"/v1/roadmaps/{slug}/tree")).headers["etag"]
        for slug in ("small", "large")
    }

    counts = {}
    for slug, etag in etags.items():
        with count_statements(engine) as log:
            response = await second_client.get(
                f"/v1/roadmaps/{slug}/tree", headers={"if-none-match": etag}
            )
        assert response.status_code == 304
        counts[slug] = log.count

    # The first read cached each public tree with its ETag: the 304 needs no database at all.
    assert counts["small"] == counts["large"] == 0
