"""The tree's bytes are its contract: `GET /v1/roadmaps/{slug}/tree` is hand-built from rows
(decision 0043), and must answer exactly the bytes the schema-built response did.

Two guards. A golden file, recorded from the schema-built response before the tree was built
by hand, holds a custom roadmap's tree (imported, forked, edited; titles with quotes, control
characters and emoji; levels, tags and fractional estimates). And every tree, the built-in
one included, is compared with a slow reference that builds the response from the schema
models as the route once did, so the guard follows the built-in roadmap as it grows.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import brotli
import httpx
import orjson
import pytest
from sqlalchemy import select

from skilltree.platform.db import Database
from skilltree.roadmaps import service
from skilltree.roadmaps.importing import ParsedRoadmap
from skilltree.roadmaps.models import Roadmap, Topic
from skilltree.roadmaps.policies import OPERATOR
from skilltree.roadmaps.schemas import RoadmapOut, RoadmapTreeOut, TopicNodeOut
from tests.support.accounts import Browser

GOLDEN = Path(__file__).parent / "golden"

DOCUMENT: dict[str, Any] = {
    "slug": "tricky",
    "title": 'A "tricky" roadmap — ünïcødé',
    "description": "Line one\nline two\ttabbed",
    "topics": [
        {
            "slug": "http",
            "title": "HTTP \U0001f310 and <html> & 'quotes'",
            "summary": 'Back\\slash, "double", \u2028 separator, \x7f delete',
            "level": "beginner",
            "tags": ["web", "protocol", "ü"],
            "estimate_hours": 1.5,
            "concept": "http",
            "children": [
                {"slug": "status-codes", "title": "Status codes", "estimate_hours": 0.1},
                {
                    "slug": "caching",
                    "title": "Caching",
                    "level": "intermediate",
                    "estimate_hours": 12.0,
                    "children": [
                        {"slug": "etags", "title": "ETags", "estimate_hours": 0.375},
                        {"slug": "cache-control", "title": "Cache-Control", "tags": []},
                    ],
                },
            ],
        },
        {
            "slug": "databases",
            "title": "Databases",
            "level": "advanced",
            "estimate_hours": 1e-05,
            "children": [{"slug": "indexes", "title": "Indexes", "estimate_hours": 9999.75}],
        },
        {"slug": "empty", "title": "Emptiness", "summary": ""},
    ],
}


@pytest.fixture
async def ada(people: Callable[[str], Awaitable[Browser]]) -> Browser:
    person = await people("Ada")
    person.client.headers.update(person.write_headers)
    return person


async def edited_fork(ada: Browser) -> str:
    """A roadmap imported from JSON, forked, and edited: added, moved and renamed topics."""
    imported = await ada.client.post("/v1/roadmaps/import", json=DOCUMENT)
    assert imported.status_code == 201, imported.text
    fork = await ada.client.post("/v1/roadmaps/tricky/forks", json={"slug": "tricky-fork"})
    assert fork.status_code == 201, fork.text
    added = await ada.client.post(
        "/v1/roadmaps/tricky-fork/topics",
        json={"title": "Joins \x01 and NULLs", "parent": "databases", "position": 0},
    )
    assert added.status_code == 201, added.text
    path = "/v1/roadmaps/tricky-fork/topics/etags"
    etag = (await ada.client.get(path)).headers["etag"]
    moved = await ada.client.patch(
        path,
        json={"title": "Entity tags", "parent": "databases", "tags": ["caching"]},
        headers={"if-match": etag},
    )
    assert moved.status_code == 200, moved.text
    return "tricky-fork"


async def reference_tree(client: httpx.AsyncClient, database: Database, slug: str) -> bytes:
    """The tree as the schema models serialise it: the route's response before decision 0043."""
    roadmap = RoadmapOut.model_validate((await client.get(f"/v1/roadmaps/{slug}")).json())
    async with database.sessionmaker() as session:
        of_roadmap = select(Roadmap.id).where(Roadmap.slug == slug).scalar_subquery()
        query = select(Topic).where(Topic.roadmap_id == of_roadmap)
        topics = (await session.execute(query)).scalars().all()
    return RoadmapTreeOut(roadmap=roadmap, topics=_nodes(topics, None)).model_dump_json().encode()


def _nodes(topics: Sequence[Topic], parent_id: int | None) -> list[TopicNodeOut]:
    children = sorted((t for t in topics if t.parent_id == parent_id), key=lambda t: t.position)
    return [
        TopicNodeOut(
            slug=topic.slug,
            title=topic.title,
            summary=topic.summary,
            level=topic.level,  # type: ignore[arg-type]  # validated on import
            tags=topic.tags,
            implemented=bool(topic.implemented_in),
            concept=topic.concept,
            estimate_hours=topic.estimate_hours,
            children=_nodes(topics, topic.id),
        )
        for topic in children
    ]


async def test_a_custom_trees_bytes_are_those_recorded_from_the_schema_built_response(
    ada: Browser, database: Database
) -> None:
    slug = await edited_fork(ada)

    response = await ada.client.get(f"/v1/roadmaps/{slug}/tree")

    assert response.status_code == 200
    assert response.content == (GOLDEN / "tricky-fork-tree.json").read_bytes()
    assert response.content == await reference_tree(ada.client, database, slug)


async def test_the_builtin_trees_bytes_are_those_the_schema_models_give(
    client: httpx.AsyncClient, database: Database, builtin_roadmap: ParsedRoadmap
) -> None:
    async with database.unit_of_work() as session:
        await service.import_roadmap(session, builtin_roadmap, viewer=OPERATOR, source="builtin")

    response = await client.get("/v1/roadmaps/backend/tree")

    assert response.status_code == 200
    assert response.content == await reference_tree(client, database, "backend")
    assert orjson.loads(response.content)["roadmap"]["topic_count"] > 100


@pytest.mark.parametrize(
    ("coding", "decompress"), [("gzip", gzip.decompress), ("br", brotli.decompress)]
)
async def test_the_cached_tree_serves_the_computed_bytes_compressed_and_revalidated(
    client: httpx.AsyncClient,
    database: Database,
    builtin_roadmap: ParsedRoadmap,
    coding: str,
    decompress: Callable[[bytes], bytes],
) -> None:
    async with database.unit_of_work() as session:
        await service.import_roadmap(session, builtin_roadmap, viewer=OPERATOR, source="builtin")
    plain = {"accept-encoding": "identity"}

    computed = await client.get("/v1/roadmaps/backend/tree", headers=plain)
    cached = await client.get("/v1/roadmaps/backend/tree", headers=plain)
    request = client.build_request(
        "GET", "/v1/roadmaps/backend/tree", headers={"accept-encoding": coding}
    )
    compressed = await client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in compressed.aiter_raw()])
    revalidated = await client.get(
        "/v1/roadmaps/backend/tree", headers=plain | {"if-none-match": cached.headers["etag"]}
    )

    assert computed.content == cached.content == await reference_tree(client, database, "backend")
    assert cached.headers["etag"] == computed.headers["etag"]
    assert compressed.headers["content-encoding"] == coding
    assert decompress(raw) == computed.content
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    assert revalidated.headers["etag"] == computed.headers["etag"]
