"""GET /v1/roadmaps: whitelisted filters and sorting, offset pages with Link headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def ada(people: People) -> Browser:
    """Ada owns five roadmaps: three public, two private, created in this order."""
    person = await people("Ada")
    for slug, title, visibility in [
        ("alpha", "Alpha", "public"),
        ("bravo", "Bravo HTTP", "private"),
        ("charlie", "Charlie", "public"),
        ("delta", "Delta http", "private"),
        ("echo", "Echo", "public"),
    ]:
        response = await person.client.post(
            "/v1/roadmaps",
            json={"slug": slug, "title": title, "visibility": visibility},
            headers=person.write_headers,
        )
        assert response.status_code == 201
    return person


async def slugs(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/v1/roadmaps", params=params)
    assert response.status_code == 200, response.text
    return [item["slug"] for item in response.json()["items"]]


async def test_filters_by_visibility(ada: Browser) -> None:
    assert await slugs(ada.client, visibility="private") == ["bravo", "delta"]
    assert await slugs(ada.client, **{"visibility[ne]": "private"}) == ["alpha", "charlie", "echo"]


async def test_title_contains_is_case_insensitive_and_treats_wildcards_literally(
    ada: Browser,
) -> None:
    assert await slugs(ada.client, **{"title[contains]": "HTTP"}) == ["bravo", "delta"]
    assert await slugs(ada.client, **{"title[contains]": "%"}) == []


async def test_filters_combine_and_respect_visibility(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    assert await slugs(client, visibility="private") == []
    assert await slugs(ada.client, visibility="public", **{"title[contains]": "e"}) == [
        "charlie",
        "echo",
    ]


async def test_sorts_by_several_fields_in_either_direction(ada: Browser) -> None:
    # A second roadmap titled "Alpha": only the second sort key orders the two.
    await ada.client.post(
        "/v1/roadmaps", json={"slug": "zulu", "title": "Alpha"}, headers=ada.write_headers
    )

    by_title_then_slug_descending = await slugs(ada.client, sort="title,-slug")
    by_title_then_slug = await slugs(ada.client, sort="title,slug")
    by_title_descending = await slugs(ada.client, sort="-title")

    assert by_title_then_slug_descending == ["zulu", "alpha", "bravo", "charlie", "delta", "echo"]
    assert by_title_then_slug == ["alpha", "zulu", "bravo", "charlie", "delta", "echo"]
    assert by_title_descending[:4] == ["echo", "delta", "charlie", "bravo"]


async def test_filters_by_time_range(people: People, client: httpx.AsyncClient) -> None:
    ada = await people("Ada")
    await ada.client.post(
        "/v1/roadmaps",
        json={"slug": "old", "title": "Old", "visibility": "public"},
        headers=ada.write_headers,
    )

    before = await slugs(client, **{"updated_at[gte]": "2000-01-01T00:00:00Z"})
    after = await slugs(client, **{"updated_at[gt]": "2999-01-01T00:00:00+00:00"})

    assert (before, after) == (["old"], [])


@pytest.mark.parametrize(
    "timestamp",
    [
        "2000-01-01T00:00:00Z",
        # RFC 3339 §5.6: "T" and "Z" may be lower case; what the description promises.
        "2000-01-01t00:00:00z",
        "2000-01-01T05:30:00.123456789+05:30",
    ],
)
async def test_a_time_filter_takes_any_rfc_3339_date_time(
    people: People, client: httpx.AsyncClient, timestamp: str
) -> None:
    ada = await people("Ada")
    await ada.client.post(
        "/v1/roadmaps",
        json={"slug": "old", "title": "Old", "visibility": "public"},
        headers=ada.write_headers,
    )

    assert await slugs(client, **{"updated_at[gte]": timestamp}) == ["old"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"colour": "red"}, "colour"),
        ({"title[startswith]": "A"}, "title[startswith]"),
        ({"visibility[gt]": "public"}, "visibility[gt]"),
        ({"visibility": "secret"}, "visibility"),
        ({"updated_at[gte]": "yesterday"}, "updated_at[gte]"),
        ({"updated_at[gte]": "2026-01-01T00:00:00"}, "updated_at[gte]"),
        ({"updated_at[gte]": ""}, "updated_at[gte]"),
        ({"sort": "owner_id"}, "sort"),
        ({"sort": "-title,,slug"}, "sort"),
    ],
)
async def test_an_unknown_field_operator_or_value_is_a_400_problem_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    response = await client.get("/v1/roadmaps", params=params)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/invalid-query"
    assert problem["parameter"] == parameter


async def test_offset_pages_link_to_each_other_in_headers_and_body(ada: Browser) -> None:
    first = await ada.client.get("/v1/roadmaps", params={"limit": 2, "sort": "slug"})
    second = await ada.client.get(first.json()["links"]["next"])
    last = await ada.client.get(second.json()["links"]["next"])

    assert [i["slug"] for i in first.json()["items"]] == ["alpha", "bravo"]
    assert [i["slug"] for i in second.json()["items"]] == ["charlie", "delta"]
    assert [i["slug"] for i in last.json()["items"]] == ["echo"]
    assert first.json()["total"] == 5
    assert first.headers["link"] == (
        '</v1/roadmaps?sort=slug&limit=2&offset=0>; rel="first", '
        '</v1/roadmaps?sort=slug&limit=2&offset=2>; rel="next"'
    )
    assert "prev" in second.json()["links"]
    assert "next" not in last.json()["links"]
    assert 'rel="next"' not in last.headers["link"]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"offset": "-1"}])
async def test_out_of_range_page_parameters_are_a_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/v1/roadmaps", params=params)

    assert response.status_code == 422


async def test_the_list_is_personal_and_never_cached_by_shared_caches(ada: Browser) -> None:
    first = await ada.client.get("/v1/roadmaps")

    again = await ada.client.get("/v1/roadmaps", headers={"if-none-match": first.headers["etag"]})

    assert first.headers["cache-control"] == "private, no-store"
    assert again.status_code == 304
