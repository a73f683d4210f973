"""HEAD is answered wherever GET is (RFC 9110 §9.1): the GET's status and headers, no body. A
route of its own for HEAD (a tus upload's offset) keeps answering it; a path no GET serves
keeps its 404 or 405."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.support.accounts import Browser, bearer_headers
from tests.support.progress import WEB, People, import_roadmap

IDENTITY = {"accept-encoding": "identity"}


@pytest.fixture
async def ada(people: People) -> Browser:
    learner = await people("Ada")
    await import_roadmap(learner, WEB, visibility="public")
    return learner


def comparable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    """The headers but for what differs by request: the id, the rate limit's count."""
    return sorted(
        (name, re.sub(r"r=\d+;t=\d+", "r=N;t=N", value))
        for name, value in response.headers.multi_items()
        if name != "x-request-id"
    )


@pytest.mark.parametrize(
    "path",
    ["/v1/roadmaps", "/v1/roadmaps/web", "/v1/roadmaps/web/tree", "/livez", "/", "/roadmaps/web"],
)
async def test_head_answers_what_get_would_without_the_body(
    client: httpx.AsyncClient, ada: Browser, path: str
) -> None:
    got = await client.get(path, headers=IDENTITY)
    head = await client.head(path, headers=IDENTITY)

    assert got.status_code == 200
    assert head.status_code == 200
    assert head.content == b""
    assert comparable_headers(head) == comparable_headers(got)


async def test_head_of_a_signed_in_read_is_checked_like_its_get(
    client: httpx.AsyncClient, ada: Browser
) -> None:
    token = await bearer_headers(ada)

    assert (await client.head("/v1/me/progress/web", headers=token)).status_code == 200
    assert (await client.head("/v1/me/progress/web")).status_code == 401
    assert (await client.head("/v1/me/progress/nothing-here", headers=token)).status_code == 404


async def test_head_of_an_event_stream_ends_once_its_headers_are_sent(
    client: httpx.AsyncClient, ada: Browser
) -> None:
    token = await bearer_headers(ada)

    head = await asyncio.wait_for(client.head("/v1/me/stream", headers=token), timeout=10)

    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


async def test_where_no_get_is_served_head_keeps_its_404_or_405(client: httpx.AsyncClient) -> None:
    missing = await client.head("/v1/nothing-here")
    post_only = await client.head("/v1/auth/login")

    assert missing.status_code == 404
    assert post_only.status_code == 405
    assert post_only.headers["allow"] == "POST"
