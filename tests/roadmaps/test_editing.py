"""Custom roadmaps through the API: create, edit topics (If-Match), fork, with stable topic ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from skilltree.roadmaps.models import Topic
from tests.support.accounts import Browser
from tests.support.api_document import request_body_validator

MARKDOWN = {"content-type": "text/markdown"}
People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def ada(people: People) -> Browser:
    person = await people("Ada")
    person.client.headers.update(person.write_headers)
    return person


async def create(person: Browser, slug: str = "plan", **fields: Any) -> httpx.Response:
    body = {"slug": slug, "title": "My plan"} | fields
    return await person.client.post("/v1/roadmaps", json=body)


async def add(person: Browser, title: str, roadmap: str = "plan", **fields: Any) -> dict[str, Any]:
    response = await person.client.post(
        f"/v1/roadmaps/{roadmap}/topics",
        json={"title": title} | fields,
        headers=person.write_headers,
    )
    assert response.status_code == 201, response.text
    topic: dict[str, Any] = response.json()
    return topic


async def etag(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


async def patch_topic(
    person: Browser, slug: str, body: dict[str, Any], roadmap: str = "plan"
) -> httpx.Response:
    path = f"/v1/roadmaps/{roadmap}/topics/{slug}"
    return await person.client.patch(
        path, json=body, headers={"if-match": await etag(person.client, path)}
    )


async def outline(client: httpx.AsyncClient, roadmap: str = "plan") -> list[Any]:
    """The tree as nested (slug, [children]) pairs: order and nesting, nothing else."""

    def shape(nodes: list[dict[str, Any]]) -> list[Any]:
        return [(node["slug"], shape(node["children"])) for node in nodes]

    return shape((await client.get(f"/v1/roadmaps/{roadmap}/tree")).json()["topics"])


async def test_a_created_roadmap_is_the_callers_private_and_empty(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    response = await create(ada, description="Things to learn")

    assert response.status_code == 201
    assert response.headers["location"] == "/v1/roadmaps/plan"
    created = response.json()
    assert (created["source"], created["visibility"], created["topic_count"]) == (
        "custom",
        "private",
        0,
    )
    assert (await client.get("/v1/roadmaps/plan")).status_code == 404


async def test_creating_a_taken_slug_is_a_409_problem(ada: Browser) -> None:
    await create(ada)

    response = await create(ada)

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/roadmap-slug-taken"


async def test_topics_are_added_in_order_under_their_parent(ada: Browser) -> None:
    await create(ada)
    await add(ada, "HTTP")
    await add(ada, "Caching", parent="http")
    await add(ada, "Status codes", parent="http", position=0)
    await add(ada, "Databases")

    assert await outline(ada.client) == [
        ("http", [("status-codes", []), ("caching", [])]),
        ("databases", []),
    ]


async def test_an_added_topic_with_a_taken_slug_is_a_409_and_a_missing_parent_a_422(
    ada: Browser,
) -> None:
    await create(ada)
    await add(ada, "HTTP")

    taken = await ada.client.post("/v1/roadmaps/plan/topics", json={"title": "x", "slug": "http"})
    orphan = await ada.client.post("/v1/roadmaps/plan/topics", json={"title": "x", "parent": "no"})

    assert taken.status_code == 409
    assert taken.json()["type"] == "/problems/topic-slug-taken"
    assert orphan.status_code == 422
    assert orphan.json()["field"] == "parent"


async def test_a_topic_is_renamed_and_moved_keeping_its_id(ada: Browser) -> None:
    await create(ada)
    await add(ada, "HTTP")
    await add(ada, "Databases")
    caching = await add(ada, "Caching", parent="http")

    response = await patch_topic(
        ada, "caching", {"title": "Caching layers", "parent": "databases", "position": 0}
    )

    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["id"], moved["title"], moved["path"]) == (
        caching["id"],
        "Caching layers",
        [{"slug": "databases", "title": "Databases"}],
    )
    assert await outline(ada.client) == [("http", []), ("databases", [("caching", [])])]


async def test_parent_null_moves_a_topic_to_the_top_level(ada: Browser) -> None:
    await create(ada)
    await add(ada, "HTTP")
    await add(ada, "Caching", parent="http")

    await patch_topic(ada, "caching", {"parent": None, "position": 0})

    assert await outline(ada.client) == [("caching", []), ("http", [])]


async def test_a_topic_cannot_move_under_its_own_subtopic(ada: Browser) -> None:
    await create(ada)
    await add(ada, "HTTP")
    await add(ada, "Caching", parent="http")

    response = await patch_topic(ada, "http", {"parent": "caching"})

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-topic-move"
    assert await outline(ada.client) == [("http", [("caching", [])])]


async def test_deleting_a_topic_removes_its_subtree_and_closes_the_gap(ada: Browser) -> None:
    await create(ada)
    for title in ("A", "B", "C"):
        await add(ada, title)
    await add(ada, "B1", parent="b")
    path = "/v1/roadmaps/plan/topics/b"

    response = await ada.client.delete(path, headers={"if-match": await etag(ada.client, path)})

    assert response.status_code == 204
    assert await outline(ada.client) == [("a", []), ("c", [])]
    assert (await ada.client.get("/v1/roadmaps/plan/topics/b1")).status_code == 404
    # The positions were renumbered: a topic appended now goes last, after "c".
    await add(ada, "D")
    assert [slug for slug, _ in await outline(ada.client)] == ["a", "c", "d"]


async def test_every_edit_bumps_the_version(ada: Browser) -> None:
    await create(ada)
    await add(ada, "HTTP")
    await patch_topic(ada, "http", {"summary": "The protocol"})

    assert (await ada.client.get("/v1/roadmaps/plan")).json()["version"] == 3


async def test_topic_ids_survive_rename_move_delete_and_reimport(
    ada: Browser, database: Database
) -> None:
    """What learners' progress is keyed to: every surviving topic keeps its id."""
    await create(ada)
    for title in ("HTTP", "Databases", "Queues"):
        await add(ada, title)
    for title in ("Caching", "Status codes"):
        await add(ada, title, parent="http")
    await add(ada, "Indexes", parent="databases")
    before = await topic_ids(database)

    await patch_topic(ada, "caching", {"title": "HTTP caching"})  # rename
    await patch_topic(ada, "indexes", {"parent": "http", "position": 0})  # move
    path = "/v1/roadmaps/plan/topics/queues"
    await ada.client.delete(path, headers={"if-match": await etag(ada.client, path)})  # delete
    exported = await ada.client.get("/v1/roadmaps/plan/export", params={"format": "json"})
    edited = exported.content.replace(b"Status codes", b"HTTP status codes")
    reimported = await ada.client.post(
        "/v1/roadmaps/import", content=edited, headers={"content-type": "application/json"}
    )

    assert reimported.json()["changes"]["updated"] == [
        {"slug": "status-codes", "fields": ["title"]}
    ]
    after = await topic_ids(database)
    survivors = set(before) - {"queues"}
    assert set(after) == survivors
    assert {slug: after[slug] for slug in survivors} == {slug: before[slug] for slug in survivors}


async def topic_ids(database: Database) -> dict[str, int]:
    async with database.sessionmaker() as session:
        rows = await session.execute(select(Topic.slug, Topic.id))
        return dict(rows.all())


async def test_only_editors_change_a_roadmap(ada: Browser, people: People) -> None:
    await create(ada, visibility="public")
    await add(ada, "HTTP")
    eve = await people("Eve")
    path = "/v1/roadmaps/plan/topics/http"
    current = await etag(eve.client, path)

    response = await eve.client.patch(
        path, json={"title": "Vandalised"}, headers={"if-match": current} | eve.write_headers
    )

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/roadmap-not-editable"


async def test_a_private_roadmap_of_another_user_is_a_404_for_every_route(
    ada: Browser, people: People
) -> None:
    await create(ada)
    await add(ada, "HTTP")
    eve = await people("Eve")
    headers = eve.write_headers | {"if-match": "*"}

    responses = [
        await eve.client.get("/v1/roadmaps/plan/topics/http"),
        await eve.client.get("/v1/roadmaps/plan/revisions"),
        await eve.client.patch("/v1/roadmaps/plan", json={"title": "x"}, headers=headers),
        await eve.client.post("/v1/roadmaps/plan/topics", json={"title": "x"}, headers=headers),
        await eve.client.patch(
            "/v1/roadmaps/plan/topics/http", json={"title": "x"}, headers=headers
        ),
        await eve.client.delete("/v1/roadmaps/plan/topics/http", headers=headers),
        await eve.client.post("/v1/roadmaps/plan/forks", json={"slug": "mine"}, headers=headers),
        await eve.client.post("/v1/roadmaps/plan/revisions", json={}, headers=headers),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert {r.json()["type"] for r in responses} == {"/problems/roadmap-not-found"}


async def test_a_fork_is_a_private_copy_owned_by_the_forker(
    ada: Browser, people: People, client: httpx.AsyncClient
) -> None:
    await create(ada, visibility="public")
    await add(ada, "HTTP")
    await add(ada, "Caching", parent="http")
    eve = await people("Eve")

    response = await eve.client.post(
        "/v1/roadmaps/plan/forks", json={"slug": "eves-plan"}, headers=eve.write_headers
    )

    assert response.status_code == 201, response.text
    fork = response.json()
    assert (fork["source"], fork["visibility"], fork["topic_count"]) == ("fork", "private", 2)
    assert await outline(eve.client, "eves-plan") == await outline(ada.client)
    # The copy is Eve's alone: invisible to others, editable by her, and the original untouched.
    assert (await client.get("/v1/roadmaps/eves-plan")).status_code == 404
    assert (await ada.client.get("/v1/roadmaps/eves-plan")).status_code == 404
    await add(eve, "Mine", roadmap="eves-plan")
    assert (await ada.client.get("/v1/roadmaps/plan")).json()["topic_count"] == 2


async def test_a_private_roadmap_can_only_be_forked_by_its_owner(
    ada: Browser, people: People
) -> None:
    await create(ada)
    eve = await people("Eve")

    own = await ada.client.post("/v1/roadmaps/plan/forks", json={"slug": "backup"})
    other = await eve.client.post(
        "/v1/roadmaps/plan/forks", json={"slug": "stolen"}, headers=eve.write_headers
    )

    assert own.status_code == 201
    assert other.status_code == 404


async def test_the_builtin_roadmap_is_forkable_but_not_editable(
    ada: Browser, database: Database, builtin_roadmap: Any
) -> None:
    from skilltree.roadmaps import service
    from skilltree.roadmaps.policies import OPERATOR

    async with database.unit_of_work() as session:
        await service.import_roadmap(session, builtin_roadmap, viewer=OPERATOR, source="builtin")
    backend = await etag(ada.client, "/v1/roadmaps/backend")

    edit = await ada.client.patch(
        "/v1/roadmaps/backend", json={"title": "Mine now"}, headers={"if-match": backend}
    )
    fork = await ada.client.post("/v1/roadmaps/backend/forks", json={"slug": "my-backend"})

    assert edit.status_code == 403
    assert fork.status_code == 201
    assert (
        fork.json()["topic_count"]
        == (await ada.client.get("/v1/roadmaps/backend")).json()["topic_count"]
    )


async def test_unknown_fields_in_an_edit_are_a_422(ada: Browser) -> None:
    await create(ada)

    response = await ada.client.post("/v1/roadmaps/plan/topics", json={"title": "x", "colour": 1})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.colour"


@pytest.mark.parametrize("field", ["title", "slug", "summary", "why", "tags"])
async def test_nulling_a_required_topic_field_is_a_422_not_a_500(
    app: FastAPI, ada: Browser, field: str
) -> None:
    await create(ada)
    await add(ada, "HTTP")
    documented = request_body_validator(app, "/v1/roadmaps/{slug}/topics/{topic_slug}", "patch")

    response = await patch_topic(ada, "http", {field: None})

    assert response.status_code == 422
    assert (await ada.client.get("/v1/roadmaps/plan/topics/http")).json()["title"] == "HTTP"
    # The description says so too: it does not promise a null the server refuses.
    assert not documented.is_valid({field: None})


@pytest.mark.parametrize("field", ["parent", "level"])
async def test_the_description_lets_parent_and_level_be_null(app: FastAPI, field: str) -> None:
    documented = request_body_validator(app, "/v1/roadmaps/{slug}/topics/{topic_slug}", "patch")

    assert documented.is_valid({field: None})  # to the top level; no level


async def test_the_owner_shares_a_roadmap_by_patching_its_visibility(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    await create(ada)
    current = await etag(ada.client, "/v1/roadmaps/plan")

    stray_org = await ada.client.patch(
        "/v1/roadmaps/plan", json={"org": "team"}, headers={"if-match": current}
    )
    shared = await ada.client.patch(
        "/v1/roadmaps/plan", json={"visibility": "public"}, headers={"if-match": current}
    )

    assert stray_org.status_code == 422
    assert shared.status_code == 200
    assert (await client.get("/v1/roadmaps/plan")).json()["visibility"] == "public"


async def test_an_empty_patch_changes_nothing_not_even_the_etag(ada: Browser) -> None:
    await create(ada)
    await add(ada, "HTTP")
    before = await ada.client.get("/v1/roadmaps/plan")

    roadmap = await ada.client.patch(
        "/v1/roadmaps/plan", json={}, headers={"if-match": before.headers["etag"]}
    )
    topic = await patch_topic(ada, "http", {})

    assert roadmap.status_code == topic.status_code == 200
    assert roadmap.headers["etag"] == before.headers["etag"]
    assert (await ada.client.get("/v1/roadmaps/plan")).json()["version"] == 2


async def test_a_roadmaps_updated_at_is_the_time_of_the_injected_clock(
    ada: Browser, clock: FrozenClock
) -> None:
    created = (await create(ada)).json()
    clock.advance(minutes=10)
    await add(ada, "HTTP")
    clock.advance(minutes=5)
    imported = await ada.client.post(
        "/v1/roadmaps/import", content=b"# Imported\n\n- [ ] One\n", headers=MARKDOWN
    )

    assert created["updated_at"] == "2026-01-01T12:00:00Z"
    assert (await ada.client.get("/v1/roadmaps/plan")).json()["updated_at"] == (
        "2026-01-01T12:10:00Z"
    )
    slug = imported.json()["roadmap"]
    assert (await ada.client.get(f"/v1/roadmaps/{slug}")).json()["updated_at"] == (
        "2026-01-01T12:15:00Z"
    )
