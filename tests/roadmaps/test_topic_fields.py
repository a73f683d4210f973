"""A topic's canonical concept and time estimate travel through import, tree, topic and export."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from skilltree.roadmaps.importing.errors import RoadmapImportError
from skilltree.roadmaps.importing.structured import parse_yaml
from tests.support.accounts import Browser

DOCUMENT: dict[str, Any] = {
    "slug": "caching",
    "title": "Caching",
    "topics": [
        {
            "slug": "http",
            "title": "HTTP",
            "children": [
                {"slug": "etags", "title": "ETags", "concept": "etags", "estimate_hours": 1.5}
            ],
        }
    ],
}


@pytest.fixture
async def author(people: Callable[[str], Awaitable[Browser]]) -> httpx.AsyncClient:
    browser = await people("Author")
    browser.client.headers.update(browser.write_headers)
    response = await browser.client.post("/v1/roadmaps/import", json=DOCUMENT)
    assert response.status_code == 201, response.text
    return browser.client


async def test_the_tree_and_the_topic_show_concept_and_estimate(author: httpx.AsyncClient) -> None:
    tree = (await author.get("/v1/roadmaps/caching/tree")).json()
    topic = (await author.get("/v1/roadmaps/caching/topics/etags")).json()

    (leaf,) = tree["topics"][0]["children"]
    assert (leaf["concept"], leaf["estimate_hours"]) == ("etags", 1.5)
    assert (topic["concept"], topic["estimate_hours"]) == ("etags", 1.5)
    assert tree["topics"][0]["concept"] is None


async def test_the_json_export_carries_them_and_reimports_unchanged(
    author: httpx.AsyncClient,
) -> None:
    exported = (await author.get("/v1/roadmaps/caching/export?format=json")).json()

    reimported = await author.post("/v1/roadmaps/import", json=exported)

    assert exported["topics"][0]["children"][0]["concept"] == "etags"
    assert exported["topics"][0]["children"][0]["estimate_hours"] == 1.5
    assert reimported.json()["changes"]["unchanged"] == 2


async def test_changing_an_estimate_is_reported_as_a_change(author: httpx.AsyncClient) -> None:
    edited = {
        **DOCUMENT,
        "topics": [
            {
                **DOCUMENT["topics"][0],
                "children": [
                    {"slug": "etags", "title": "ETags", "concept": "etags", "estimate_hours": 3}
                ],
            }
        ],
    }

    report = (await author.post("/v1/roadmaps/import", json=edited)).json()

    assert report["changes"]["updated"] == [{"slug": "etags", "fields": ["estimate_hours"]}]


@pytest.mark.parametrize(
    "field", ["concept: Not A Slug", "estimate_hours: -1", "estimate_hours: lots"]
)
def test_a_bad_concept_or_estimate_is_an_import_error(field: str) -> None:
    text = f"title: R\ntopics:\n  - title: T\n    {field}\n"

    with pytest.raises(RoadmapImportError) as raised:
        parse_yaml(text)

    assert "topics[0]" in str(raised.value)
