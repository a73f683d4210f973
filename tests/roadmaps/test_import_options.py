"""Import options a user reaches for: applying the file's ticked boxes to one's progress, and the
documented problem for a file that is too large."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.support.accounts import Browser

MARKDOWN = {"content-type": "text/markdown"}
TICKED = """\
# Ticked plan

## HTTP

- [x] Status codes
- [/] Caching
- [ ] ETags
- [-] HTTP/1.0
"""


@pytest.fixture
async def client(people: Callable[[str], Awaitable[Browser]]) -> httpx.AsyncClient:
    author = await people("Author")
    author.client.headers.update(author.write_headers)
    return author.client


async def statuses(client: httpx.AsyncClient, slug: str) -> dict[str, str]:
    response = await client.get(f"/v1/me/progress/{slug}")
    assert response.status_code == 200, response.text
    found: dict[str, str] = {}

    def walk(nodes: list[dict[str, object]]) -> None:
        for node in nodes:
            found[str(node["slug"])] = str(node["status"])
            walk(node.get("children", []))  # type: ignore[arg-type]

    walk(response.json()["topics"])
    return found


async def test_a_dry_run_with_apply_progress_says_which_boxes_would_be_applied(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/roadmaps/import",
        content=TICKED.encode(),
        headers=MARKDOWN,
        params={"dry_run": "true", "apply_progress": "true"},
    )

    assert response.status_code == 200
    progress = response.json()["progress"]
    assert progress["applied"] is False
    assert progress["marks"] == [
        {"topic": "status-codes", "status": "done"},
        {"topic": "caching", "status": "in_progress"},
        {"topic": "http-1-0", "status": "skipped"},
    ]


async def test_apply_progress_records_the_ticked_boxes_as_the_importers_progress(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/roadmaps/import",
        content=TICKED.encode(),
        headers=MARKDOWN,
        params={"apply_progress": "true"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["progress"]["applied"] is True
    assert response.json()["progress"]["changed"] == 3
    found = await statuses(client, "ticked-plan")
    assert found["status-codes"] == "done"
    assert found["caching"] == "in_progress"
    assert found["http-1-0"] == "skipped"
    assert found["etags"] == "todo"


async def test_without_apply_progress_ticked_boxes_leave_progress_alone(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/roadmaps/import", content=TICKED.encode(), headers=MARKDOWN)

    assert response.status_code == 201
    assert response.json()["progress"] is None
    assert set((await statuses(client, "ticked-plan")).values()) == {"todo"}


async def test_an_empty_box_on_reimport_does_not_undo_recorded_progress(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/roadmaps/import", content=TICKED.encode(), headers=MARKDOWN)
    await client.put("/v1/me/progress/ticked-plan/etags", json={"status": "done"})

    await client.post(
        "/v1/roadmaps/import",
        content=TICKED.encode(),
        headers=MARKDOWN,
        params={"apply_progress": "true"},
    )

    assert (await statuses(client, "ticked-plan"))["etags"] == "done"


@pytest.mark.parametrize("size", [1_400_000, 3_000_000], ids=["over-import-limit", "over-body"])
async def test_an_oversized_import_is_the_documented_roadmap_too_large_problem(
    client: httpx.AsyncClient, size: int
) -> None:
    body = b"# T\n\n## S\n\n" + b"- item\n" * (size // 7)

    response = await client.post("/v1/roadmaps/import", content=body, headers=MARKDOWN)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/roadmap-too-large"
    assert (await client.get("/v1/roadmaps")).json()["items"] == []
