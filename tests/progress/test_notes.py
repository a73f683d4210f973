"""Notes (markdown, sanitised) and personal resources on a topic."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.accounts import Browser
from tests.support.progress import People

NOTE = "/v1/me/progress/web/etags/note"
RESOURCES = "/v1/me/progress/web/etags/resources"


async def put_note(learner: Browser, markdown: str) -> Any:
    """Write the note as a careful client does: If-Match with the ETag just read."""
    current = (await learner.client.get(NOTE)).headers["etag"]
    return await learner.client.put(
        NOTE, json={"markdown": markdown}, headers=learner.write_headers | {"if-match": current}
    )


async def test_a_note_is_rendered_to_html(ada: Browser) -> None:
    response = await put_note(ada, "# Strong validators\n\n**byte-for-byte** equal")

    assert response.status_code == 201
    assert "<h1>Strong validators</h1>" in response.json()["html"]
    assert "<strong>byte-for-byte</strong>" in response.json()["html"]
    stored = await ada.client.get(NOTE)
    assert stored.json()["markdown"].startswith("# Strong")
    assert stored.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        '<img src=x onerror="alert(1)">',
        "<a href='https://evil.example' onclick='steal()'>x</a>",
        "<a href='javascript:alert(1)'>x</a>",
        "<details><summary>ok</summary><iframe src='https://evil.example'></iframe></details>",
    ],
)
async def test_a_note_never_carries_script_into_its_html(ada: Browser, hostile: str) -> None:
    html = (await put_note(ada, hostile)).json()["html"]

    assert "<script" not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html)  # no event-handler attribute on a tag
    assert not re.search(r"href\s*=\s*[\"']?javascript", html)


async def test_harmless_inline_html_is_kept(ada: Browser) -> None:
    html = (await put_note(ada, "Press <kbd>Ctrl</kbd>+<kbd>C</kbd>")).json()["html"]

    assert "<kbd>Ctrl</kbd>" in html


async def test_links_in_notes_get_rel_noopener(ada: Browser) -> None:
    html = (await put_note(ada, "[RFC 9110](https://www.rfc-editor.org/rfc/rfc9110)")).json()[
        "html"
    ]

    assert 'href="https://www.rfc-editor.org/rfc/rfc9110"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


async def test_a_note_over_the_limit_is_a_413_problem_and_keeps_the_old_one(
    ada: Browser,
) -> None:
    await put_note(ada, "keep me")

    response = await put_note(ada, "x" * 20_001)

    assert response.status_code == 413
    assert response.json()["type"] == "/problems/note-too-large"
    assert (await ada.client.get(NOTE)).json()["markdown"] == "keep me"


async def test_a_blank_note_deletes_it(ada: Browser) -> None:
    await put_note(ada, "something")

    await put_note(ada, "   ")

    assert (await ada.client.get(NOTE)).json() == {"markdown": "", "html": "", "updated_at": None}


async def test_resources_are_added_listed_and_deleted(ada: Browser) -> None:
    created = await ada.client.post(
        RESOURCES,
        json={"title": "MDN: ETag", "url": "https://developer.mozilla.org/docs/ETag"},
        headers=ada.write_headers,
    )
    assert created.status_code == 201

    listed = (await ada.client.get(RESOURCES)).json()["items"]
    deleted = await ada.client.delete(
        f"{RESOURCES}/{created.json()['id']}", headers=ada.write_headers
    )

    assert [item["title"] for item in listed] == ["MDN: ETag"]
    assert deleted.status_code == 204
    assert (await ada.client.get(RESOURCES)).json()["items"] == []


@pytest.mark.parametrize(
    "url", ["ftp://example.org/file", "javascript:alert(1)", "https://", "example.org", ""]
)
async def test_a_resource_needs_an_http_or_https_url(ada: Browser, url: str) -> None:
    response = await ada.client.post(
        RESOURCES, json={"title": "Bad", "url": url}, headers=ada.write_headers
    )

    assert response.status_code == 422
    assert (await ada.client.get(RESOURCES)).json()["items"] == []


async def test_notes_and_resources_are_private_to_their_author(
    ada: Browser, people: People
) -> None:
    await put_note(ada, "Ada's secret")
    created = await ada.client.post(
        RESOURCES, json={"title": "Mine", "url": "https://example.org"}, headers=ada.write_headers
    )
    bob = await people("Bob")

    assert (await bob.client.get(NOTE)).json()["markdown"] == ""
    assert (await bob.client.get(RESOURCES)).json()["items"] == []
    stolen = await bob.client.delete(
        f"{RESOURCES}/{created.json()['id']}", headers=bob.write_headers
    )
    assert stolen.status_code == 404
    assert len((await ada.client.get(RESOURCES)).json()["items"]) == 1
