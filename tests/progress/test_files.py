"""Exporting progress in the format `Accept` asks for, and importing the JSON back."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.support.accounts import Browser
from tests.support.progress import People, by_slug, mark


async def export(learner: Browser, accept: str | None) -> tuple[int, str, str]:
    headers = {"accept": accept} if accept is not None else {}
    response = await learner.client.get("/v1/me/progress/web/export", headers=headers)
    return response.status_code, response.headers.get("content-type", ""), response.text


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/markdown, text/csv;q=0.5", "text/markdown"),
        ("text/*;q=0.9, application/json;q=0.1", "text/csv"),
        ("application/json;q=0, */*;q=0.2", "text/csv"),
    ],
)
async def test_accept_picks_the_export_format(
    ada: Browser, accept: str | None, media_type: str
) -> None:
    status, content_type, _ = await export(ada, accept)

    assert status == 200
    assert content_type.split(";")[0] == media_type


@pytest.mark.parametrize("accept", ["image/png", "text/html, application/xml", "*/*;q=0"])
async def test_an_unacceptable_accept_is_a_406_problem_listing_the_formats(
    ada: Browser, accept: str
) -> None:
    response = await ada.client.get("/v1/me/progress/web/export", headers={"accept": accept})

    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["available"] == ["application/json", "text/csv", "text/markdown"]


async def test_the_markdown_export_checks_done_topics(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    await mark(ada, "cache-control", "done")

    _, _, text = await export(ada, "text/markdown")

    assert "- [x] Caching" in text
    assert "  - [x] ETags" in text
    assert "- [ ] Status codes" in text


async def test_the_csv_export_has_a_row_per_topic_with_its_rolled_up_status(ada: Browser) -> None:
    await mark(ada, "etags", "done", confidence=4)

    _, _, text = await export(ada, "text/csv")

    rows = {row["slug"]: row for row in csv.DictReader(io.StringIO(text))}
    assert len(rows) == 7
    assert (rows["etags"]["status"], rows["etags"]["confidence"]) == ("done", "4")
    assert (rows["caching"]["status"], rows["caching"]["source"]) == ("in_progress", "derived")


async def test_the_json_export_imports_back_idempotently(ada: Browser, people: People) -> None:
    await mark(ada, "etags", "done", confidence=5)
    await mark(ada, "indexes", "in_progress")
    _, _, exported = await export(ada, "application/json")
    bob = await people("Bob")

    async def restore() -> httpx.Response:
        return await bob.client.post(
            "/v1/me/progress/web/import",
            content=exported,
            headers={**bob.write_headers, "content-type": "application/json"},
        )

    first = await restore()
    second = await restore()

    assert (first.json()["changed"], second.json()["changed"]) == (2, 0)
    assert second.json()["unchanged"] == 2
    topics = by_slug((await bob.client.get("/v1/me/progress/web")).json()["topics"])
    assert (topics["etags"]["status"], topics["etags"]["confidence"]) == ("done", 5)
    assert topics["indexes"]["status"] == "in_progress"


async def test_an_import_naming_an_unknown_topic_changes_nothing(ada: Browser) -> None:
    document = {
        "format": "skilltree-progress/1",
        "topics": [
            {"slug": "etags", "status": "done"},
            {"slug": "no-such-topic", "status": "done"},
        ],
    }

    response = await ada.client.post(
        "/v1/me/progress/web/import", json=document, headers=ada.write_headers
    )

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-progress-import"
    assert response.json()["unknown"] == ["no-such-topic"]
    assert (await ada.client.get("/v1/me/progress/web/history")).json()["items"] == []


async def test_an_import_in_another_format_is_a_422_problem(ada: Browser) -> None:
    response = await ada.client.post(
        "/v1/me/progress/web/import",
        json={"format": "csv", "topics": [{"slug": "etags", "status": "done"}]},
        headers=ada.write_headers,
    )

    assert response.status_code == 422
    assert "body.format" in [error["field"] for error in response.json()["errors"]]
