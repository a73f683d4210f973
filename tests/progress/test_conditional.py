"""Conditional requests on personal data: ETags and 304 on reads, If-Match on note writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.accounts import Browser
from tests.support.progress import mark

NOTE = "/v1/me/progress/web/etags/note"
READS = ["/v1/me/progress/web", "/v1/me/progress/web/summary", NOTE]


async def write_note(learner: Browser, markdown: str, **headers: str) -> httpx.Response:
    return await learner.client.put(
        NOTE,
        json={"markdown": markdown},
        headers=learner.write_headers | {k.replace("_", "-"): v for k, v in headers.items()},
    )


async def stored_note(learner: Browser) -> Any:
    return (await learner.client.get(NOTE)).json()["markdown"]


async def current_etag(learner: Browser, path: str = NOTE) -> str:
    return (await learner.client.get(path)).headers["etag"]


@pytest.mark.parametrize("path", READS)
async def test_a_personal_read_is_a_304_while_it_is_unchanged(ada: Browser, path: str) -> None:
    first = await ada.client.get(path)

    again = await ada.client.get(path, headers={"if-none-match": first.headers["etag"]})

    assert first.status_code == 200
    assert not first.headers["etag"].startswith("W/")  # strong: it hashes the exact bytes
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    # A 304 keeps personal data out of shared caches just like the 200 did.
    assert again.headers["cache-control"] == first.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("path", READS[:2])
async def test_a_status_change_changes_the_progress_etags(ada: Browser, path: str) -> None:
    before = await current_etag(ada, path)
    await mark(ada, "etags", "done")

    response = await ada.client.get(path, headers={"if-none-match": before})

    assert response.status_code == 200
    assert response.headers["etag"] != before


async def test_one_learners_etag_is_not_anothers(ada: Browser, people: Any) -> None:
    await mark(ada, "etags", "done")
    bob = await people("Bob")
    await mark(bob, "indexes", "done")

    assert await current_etag(ada, READS[0]) != await current_etag(bob, READS[0])


async def test_the_first_note_needs_no_precondition_and_is_a_201(ada: Browser) -> None:
    response = await write_note(ada, "first")

    assert response.status_code == 201
    assert response.headers["etag"] == await current_etag(ada)
    assert await stored_note(ada) == "first"


async def test_if_none_match_star_creates_the_first_note(ada: Browser) -> None:
    response = await write_note(ada, "first", if_none_match="*")

    assert response.status_code == 201
    assert await stored_note(ada) == "first"


async def test_if_none_match_star_on_an_existing_note_is_a_412_and_keeps_it(ada: Browser) -> None:
    await write_note(ada, "first")

    response = await write_note(ada, "second", if_none_match="*")

    assert response.status_code == 412
    assert response.json()["type"] == "/problems/precondition-failed"
    assert await stored_note(ada) == "first"


async def test_replacing_a_note_without_if_match_is_a_428_and_keeps_it(ada: Browser) -> None:
    await write_note(ada, "first")

    response = await write_note(ada, "second")

    assert response.status_code == 428
    assert response.json()["type"] == "/problems/precondition-required"
    assert await stored_note(ada) == "first"


async def test_deleting_a_note_by_writing_blank_also_needs_if_match(ada: Browser) -> None:
    await write_note(ada, "first")

    response = await write_note(ada, "  ")

    assert response.status_code == 428
    assert await stored_note(ada) == "first"


async def test_replacing_a_note_with_a_stale_etag_is_a_412_and_keeps_the_newer(
    ada: Browser,
) -> None:
    await write_note(ada, "first")
    read_on_laptop = await current_etag(ada)
    phone = await write_note(ada, "from the phone", if_match=read_on_laptop)

    laptop = await write_note(ada, "from the laptop", if_match=read_on_laptop)

    assert phone.status_code == 200
    assert laptop.status_code == 412
    assert await stored_note(ada) == "from the phone"


async def test_replacing_a_note_with_the_current_etag_answers_its_new_etag(ada: Browser) -> None:
    await write_note(ada, "first")

    response = await write_note(ada, "second", if_match=await current_etag(ada))

    assert response.status_code == 200
    assert response.json()["markdown"] == "second"
    assert response.headers["etag"] == await current_etag(ada)
    assert response.headers["cache-control"] == "private, no-store"


async def test_the_blank_pages_etag_creates_the_first_note(ada: Browser) -> None:
    response = await write_note(ada, "first", if_match=await current_etag(ada))

    assert response.status_code == 201


async def test_the_blank_pages_etag_is_stale_once_a_note_exists(ada: Browser) -> None:
    blank = await current_etag(ada)
    await write_note(ada, "first")

    response = await write_note(ada, "second", if_match=blank)

    assert response.status_code == 412
    assert await stored_note(ada) == "first"


async def test_if_match_star_without_a_note_is_a_412(ada: Browser) -> None:
    response = await write_note(ada, "first", if_match="*")

    assert response.status_code == 412
    assert await stored_note(ada) == ""


async def test_if_match_star_replaces_an_existing_note(ada: Browser) -> None:
    await write_note(ada, "first")

    response = await write_note(ada, "second", if_match="*")

    assert response.status_code == 200
    assert await stored_note(ada) == "second"


async def test_a_weak_etag_never_replaces_a_note(ada: Browser) -> None:
    await write_note(ada, "first")

    response = await write_note(ada, "second", if_match="W/" + await current_etag(ada))

    assert response.status_code == 412
    assert await stored_note(ada) == "first"
