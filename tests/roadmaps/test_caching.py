"""Public roadmap trees and topics come from the cache, and every write that changes what a
reader sees invalidates it. Run with the cache in process memory and in a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.cache import Cache
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RedisSettings, Settings
from skilltree.platform.db import Database
from skilltree.roadmaps import service
from skilltree.roadmaps.importing import parse_roadmap
from skilltree.roadmaps.policies import OPERATOR
from tests.support.accounts import Browser
from tests.support.redis import REDIS_URL
from tests.support.tcp_proxy import tcp_proxy

People = Callable[[str], Awaitable[Browser]]
TREE = "/v1/roadmaps/plan/tree"
TOPIC = "/v1/roadmaps/plan/topics/basics"
PLAN: dict[str, Any] = {
    "slug": "plan",
    "title": "Plan",
    "topics": [
        {"slug": "basics", "title": "Basics", "children": [{"slug": "http", "title": "HTTP"}]},
        {"slug": "later", "title": "Later"},
    ],
}


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return settings.model_copy(update={"redis": shared_state})


@pytest.fixture
async def ada(people: People) -> Browser:
    person = await people("Ada")
    person.client.headers.update(person.write_headers)
    await import_plan(person, PLAN, visibility="public")
    return person


async def import_plan(person: Browser, document: dict[str, Any], **params: str) -> None:
    response = await person.client.post("/v1/roadmaps/import", json=document, params=params)
    assert response.status_code in (200, 201), response.text


def cache_of(app: FastAPI) -> Cache:
    cache: Cache = app.state.resources.cache
    return cache


async def if_match(person: Browser, path: str) -> dict[str, str]:
    return {"if-match": (await person.client.get(path)).headers["etag"]}


async def test_a_public_tree_is_computed_once_then_served_from_the_cache(
    ada: Browser, client: httpx.AsyncClient, app: FastAPI
) -> None:
    before = cache_of(app).stats.recomputes
    first = await client.get(TREE)
    second = await client.get(TREE)
    revalidated = await client.get(TREE, headers={"if-none-match": first.headers["etag"]})

    assert (first.status_code, second.status_code, revalidated.status_code) == (200, 200, 304)
    assert second.content == first.content
    assert second.headers["etag"] == revalidated.headers["etag"] == first.headers["etag"]
    assert second.headers["cache-control"] == "public, max-age=300"
    assert cache_of(app).stats.recomputes == before + 1


async def rename_roadmap(ada: Browser) -> None:
    path = "/v1/roadmaps/plan"
    await ada.client.patch(path, json={"title": "Renamed"}, headers=await if_match(ada, path))


async def add_topic(ada: Browser) -> None:
    await ada.client.post("/v1/roadmaps/plan/topics", json={"title": "Added", "parent": "basics"})


async def rename_topic(ada: Browser) -> None:
    await ada.client.patch(TOPIC, json={"title": "Renamed"}, headers=await if_match(ada, TOPIC))


async def delete_subtopic(ada: Browser) -> None:
    path = "/v1/roadmaps/plan/topics/http"
    await ada.client.delete(path, headers=await if_match(ada, path))


async def reimport(ada: Browser) -> None:
    changed = {**PLAN, "topics": [{**PLAN["topics"][0], "summary": "Start here"}]}
    await import_plan(ada, changed)


# Each write, and whether it changes the "basics" topic too (a topic shows no roadmap title).
WRITES = {
    "rename the roadmap": (rename_roadmap, False),
    "add a topic": (add_topic, True),
    "rename a topic": (rename_topic, True),
    "delete a subtopic": (delete_subtopic, True),
    "re-import": (reimport, True),
}


@pytest.mark.parametrize(("write", "changes_topic"), WRITES.values(), ids=WRITES.keys())
async def test_every_write_to_a_roadmap_invalidates_its_cached_tree_and_topics(
    ada: Browser,
    client: httpx.AsyncClient,
    write: Callable[[Browser], Awaitable[None]],
    changes_topic: bool,
) -> None:
    tree, topic = await client.get(TREE), await client.get(TOPIC)

    await write(ada)

    new_tree, new_topic = await client.get(TREE), await client.get(TOPIC)
    assert new_tree.headers["etag"] != tree.headers["etag"]
    assert (new_topic.headers["etag"] != topic.headers["etag"]) is changes_topic
    assert new_tree.json()["roadmap"]["version"] == tree.json()["roadmap"]["version"] + 1
    # A client revalidating its old copy gets the new one, not a 304.
    stale = await client.get(TREE, headers={"if-none-match": tree.headers["etag"]})
    assert stale.status_code == 200


async def test_publishing_a_revision_recomputes_the_cached_tree(
    ada: Browser, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await client.get(TREE)
    before = cache_of(app).stats.recomputes

    published = await ada.client.post("/v1/roadmaps/plan/revisions", json={"note": "v1"})
    await client.get(TREE)

    assert published.status_code == 201
    assert cache_of(app).stats.recomputes == before + 1


async def test_making_a_cached_roadmap_private_hides_it_at_once(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    assert (await client.get(TREE)).status_code == (await client.get(TOPIC)).status_code == 200

    path = "/v1/roadmaps/plan"
    response = await ada.client.patch(
        path, json={"visibility": "private"}, headers=await if_match(ada, path)
    )

    assert response.status_code == 200
    assert (await client.get(TREE)).status_code == (await client.get(TOPIC)).status_code == 404
    assert (await ada.client.get(TREE)).status_code == 200


async def test_a_private_roadmap_is_never_cached_nor_served_to_anyone_else(
    ada: Browser, people: People, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await import_plan(ada, {**PLAN, "slug": "secret"})
    bob = await people("Bob")
    stats = cache_of(app).stats
    before = (stats.misses, stats.recomputes)

    own = [await ada.client.get("/v1/roadmaps/secret/tree") for _ in range(2)]
    others = [await reader.get("/v1/roadmaps/secret/tree") for reader in (client, bob.client)]

    assert [response.status_code for response in own] == [200, 200]
    assert own[0].headers["cache-control"] == "private, no-store"
    assert [response.status_code for response in others] == [404, 404]
    # Every read missed: the owner's two were computed for her alone, the others found nothing.
    assert (stats.misses, stats.recomputes) == (before[0] + 4, before[1] + 2)
    assert stats.hits == 0


async def test_an_unknown_roadmap_or_topic_is_a_404_every_time(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.get("/v1/roadmaps/nothing/tree")).status_code == 404
        assert (await client.get("/v1/roadmaps/nothing/topics/x")).status_code == 404


@pytest.mark.redis
@pytest.mark.parametrize("shared_state", ["redis"], indirect=True)
async def test_when_redis_stops_public_trees_are_served_from_the_database(
    settings: Settings, shared_state: RedisSettings, database: Database, clock: FrozenClock
) -> None:
    target = urlsplit(REDIS_URL)
    async with tcp_proxy(target.hostname or "", target.port or 6379) as proxy:
        # The app reaches Redis only through the proxy, which the test then cuts.
        redis = shared_state.model_copy(update={"url": f"redis://127.0.0.1:{proxy.port}/0"})
        application = create_app(
            settings.model_copy(update={"redis": redis}), database=database, clock=clock
        )
        async with application.router.lifespan_context(application):
            async with database.unit_of_work() as session:
                parsed = parse_roadmap(orjson.dumps(PLAN), "json")
                await service.import_roadmap(session, parsed, viewer=OPERATOR)
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as reader:
                cached = await reader.get(TREE)
                await proxy.stop()
                # Once the instance knows it hears no invalidations, it trusts no local copy
                # without asking Redis (decision 0055), and finds Redis gone.
                broadcaster = application.state.resources.broadcaster
                for _ in range(200):
                    if not broadcaster.connected:
                        break
                    await asyncio.sleep(0.01)
                during = await reader.get(TREE)

    assert cached.status_code == during.status_code == 200
    assert during.content == cached.content
    assert cache_of(application).stats.errors >= 1
