"""Conditional requests on the roadmaps API: ETag, If-None-Match (304), If-Match (428, 412)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from skilltree.platform.http.conditional import none_match, strong_match
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]
PLAN = b"# Plan\n\n## Basics\n\n- HTTP\n- SQL\n"


@pytest.mark.parametrize(
    ("header", "matches"),
    [('"a"', True), ('W/"a"', True), ('"b", "a"', True), ("*", True), ('"b"', False), ("", False)],
)
def test_if_none_match_uses_the_weak_comparison(header: str, matches: bool) -> None:
    assert none_match(header, '"a"') is matches


@pytest.mark.parametrize(
    ("header", "matches"),
    [('"a"', True), ('W/"a"', False), ('"b", "a"', True), ("*", True), ('"a-x"', False)],
)
def test_if_match_uses_the_strong_comparison(header: str, matches: bool) -> None:
    assert strong_match(header, '"a"') is matches


@pytest.fixture
async def ada(people: People) -> Browser:
    person = await people("Ada")
    person.client.headers.update(person.write_headers)
    response = await person.client.post(
        "/v1/roadmaps/import",
        content=PLAN,
        headers={"content-type": "text/markdown"},
        params={"visibility": "public"},
    )
    assert response.status_code == 201
    return person


RESOURCES = ["/v1/roadmaps/plan", "/v1/roadmaps/plan/tree", "/v1/roadmaps/plan/topics/http"]


@pytest.mark.parametrize("path", RESOURCES)
async def test_a_read_carries_a_strong_etag_and_public_caching(
    ada: Browser, client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["etag"].startswith('"')  # strong: no W/ prefix
    assert response.headers["cache-control"] == "public, max-age=300"


@pytest.mark.parametrize("path", RESOURCES)
async def test_if_none_match_with_the_current_etag_is_a_304_without_a_body(
    ada: Browser, client: httpx.AsyncClient, path: str
) -> None:
    first = await client.get(path)

    again = await client.get(path, headers={"if-none-match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == first.headers["cache-control"]


async def test_if_none_match_with_an_old_etag_gets_the_full_representation(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/roadmaps/plan/tree", headers={"if-none-match": '"old"'})

    assert response.status_code == 200
    assert response.json()["roadmap"]["slug"] == "plan"


async def test_the_etag_is_the_hash_of_the_exact_bytes(ada: Browser) -> None:
    first = await ada.client.get("/v1/roadmaps/plan/tree")
    second = await ada.client.get("/v1/roadmaps/plan/tree")

    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    other = await ada.client.get("/v1/roadmaps/plan")
    assert other.headers["etag"] != first.headers["etag"]


async def test_private_roadmaps_are_never_stored_by_caches(people: People) -> None:
    ada = await people("Ada")
    await ada.client.post(
        "/v1/roadmaps", json={"slug": "mine", "title": "Mine"}, headers=ada.write_headers
    )

    response = await ada.client.get("/v1/roadmaps/mine/tree")

    assert response.headers["cache-control"] == "private, no-store"
    assert "etag" in response.headers


async def test_an_update_without_if_match_is_a_428_problem_and_changes_nothing(
    ada: Browser,
) -> None:
    response = await ada.client.patch("/v1/roadmaps/plan", json={"title": "Renamed"})

    assert response.status_code == 428
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/precondition-required"
    assert (await ada.client.get("/v1/roadmaps/plan")).json()["title"] == "Plan"


async def test_an_update_with_a_stale_etag_is_a_412_problem_and_changes_nothing(
    ada: Browser,
) -> None:
    stale = (await ada.client.get("/v1/roadmaps/plan")).headers["etag"]
    first = await ada.client.patch(
        "/v1/roadmaps/plan", json={"title": "First"}, headers={"if-match": stale}
    )
    assert first.status_code == 200

    second = await ada.client.patch(
        "/v1/roadmaps/plan", json={"title": "Second"}, headers={"if-match": stale}
    )

    assert second.status_code == 412
    assert second.json()["type"] == "/problems/precondition-failed"
    assert (await ada.client.get("/v1/roadmaps/plan")).json()["title"] == "First"


async def test_an_update_with_the_current_etag_succeeds_and_returns_the_new_etag(
    ada: Browser,
) -> None:
    before = await ada.client.get("/v1/roadmaps/plan")

    response = await ada.client.patch(
        "/v1/roadmaps/plan",
        json={"title": "Renamed", "description": "Now described"},
        headers={"if-match": before.headers["etag"]},
    )

    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"
    assert response.headers["etag"] != before.headers["etag"]
    after = await ada.client.get("/v1/roadmaps/plan")
    assert after.headers["etag"] == response.headers["etag"]


async def test_a_weak_etag_never_satisfies_if_match(ada: Browser) -> None:
    current = (await ada.client.get("/v1/roadmaps/plan")).headers["etag"]

    response = await ada.client.patch(
        "/v1/roadmaps/plan", json={"title": "x"}, headers={"if-match": f"W/{current}"}
    )

    assert response.status_code == 412


async def test_topic_updates_need_if_match_too(ada: Browser) -> None:
    path = "/v1/roadmaps/plan/topics/http"
    current = (await ada.client.get(path)).headers["etag"]

    missing = await ada.client.patch(path, json={"title": "HTTP/2"})
    stale = await ada.client.patch(path, json={"title": "HTTP/2"}, headers={"if-match": '"x"'})
    deleted = await ada.client.delete(path, headers={"if-match": '"x"'})
    matching = await ada.client.patch(path, json={"title": "HTTP/2"}, headers={"if-match": current})

    assert [missing.status_code, stale.status_code, deleted.status_code] == [428, 412, 412]
    assert matching.status_code == 200


async def test_an_edit_changes_the_tree_etag_so_caches_revalidate(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    tree = await client.get("/v1/roadmaps/plan/tree")
    path = "/v1/roadmaps/plan/topics/sql"
    current = (await ada.client.get(path)).headers["etag"]
    await ada.client.patch(path, json={"title": "SQL basics"}, headers={"if-match": current})

    response = await client.get(
        "/v1/roadmaps/plan/tree", headers={"if-none-match": tree.headers["etag"]}
    )

    assert response.status_code == 200
    assert response.headers["etag"] != tree.headers["etag"]
    assert "SQL basics" in response.text


async def test_an_anonymous_update_is_a_401_before_any_precondition(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    response = await client.patch("/v1/roadmaps/plan", json={"title": "x"})

    assert response.status_code == 401
