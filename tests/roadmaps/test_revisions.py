"""Published revisions: numbered, immutable snapshots, readable by whoever sees the roadmap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from skilltree.platform.db import Database
from skilltree.platform.events import DELIVER_TASK
from skilltree.platform.queue.models import OutboxMessage
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def ada(people: People) -> Browser:
    person = await people("Ada")
    person.client.headers.update(person.write_headers)
    await person.client.post(
        "/v1/roadmaps", json={"slug": "plan", "title": "Plan", "visibility": "public"}
    )
    await person.client.post("/v1/roadmaps/plan/topics", json={"title": "HTTP"})
    return person


async def publish(person: Browser, note: str = "") -> httpx.Response:
    return await person.client.post("/v1/roadmaps/plan/revisions", json={"note": note})


async def test_publishing_numbers_revisions_and_points_to_them(ada: Browser) -> None:
    first = await publish(ada, "First cut")
    await ada.client.post("/v1/roadmaps/plan/topics", json={"title": "SQL"})
    second = await publish(ada)

    assert first.status_code == second.status_code == 201
    assert (first.json()["number"], second.json()["number"]) == (1, 2)
    assert first.headers["location"] == "/v1/roadmaps/plan/revisions/1"
    listed = (await ada.client.get("/v1/roadmaps/plan/revisions")).json()["items"]
    assert [(r["number"], r["note"]) for r in listed] == [(2, ""), (1, "First cut")]


async def test_a_revision_keeps_its_content_after_the_roadmap_changes(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    await publish(ada)
    before = await client.get("/v1/roadmaps/plan/revisions/1")
    path = "/v1/roadmaps/plan/topics/http"
    etag = (await ada.client.get(path)).headers["etag"]
    await ada.client.patch(path, json={"title": "HTTP/3"}, headers={"if-match": etag})

    after = await client.get("/v1/roadmaps/plan/revisions/1")

    assert after.content == before.content
    assert after.headers["etag"] == before.headers["etag"]
    assert [t["title"] for t in after.json()["document"]["topics"]] == ["HTTP"]


async def test_publishing_an_unchanged_roadmap_is_a_409_problem(ada: Browser) -> None:
    await publish(ada)

    response = await publish(ada)

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/revision-unchanged"


async def test_revisions_have_no_update_or_delete_route(ada: Browser) -> None:
    await publish(ada)

    patched = await ada.client.patch("/v1/roadmaps/plan/revisions/1", json={"note": "x"})
    deleted = await ada.client.delete("/v1/roadmaps/plan/revisions/1")

    assert patched.status_code == deleted.status_code == 405


async def test_the_database_refuses_to_change_a_revision(ada: Browser, database: Database) -> None:
    await publish(ada)

    async with database.sessionmaker() as session:
        with pytest.raises(DBAPIError, match="immutable"):
            await session.execute(text("UPDATE roadmap_revisions SET note = 'rewritten'"))
        await session.rollback()


async def test_only_editors_publish(ada: Browser, people: People) -> None:
    eve = await people("Eve")

    response = await eve.client.post(
        "/v1/roadmaps/plan/revisions", json={}, headers=eve.write_headers
    )

    assert response.status_code == 403


async def test_an_unknown_revision_is_a_404_problem(ada: Browser) -> None:
    response = await ada.client.get("/v1/roadmaps/plan/revisions/7")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/revision-not-found"


async def test_publishing_emits_roadmap_published_through_the_outbox(
    ada: Browser, database: Database
) -> None:
    await publish(ada, "First cut")

    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(OutboxMessage.args).where(OutboxMessage.task_name == DELIVER_TASK)
        )
        published = [args[0] for (args,) in rows if args[0]["type"] == "roadmap.published"]
    assert [event["data"] for event in published] == [
        {"roadmap": "plan", "revision": 1, "note": "First cut"}
    ]
