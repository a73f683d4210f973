"""bench/fast_path.py: the same-work ceiling sends exactly the bytes it was given, and the count
of tree requests the fast path answered is the fast path's own."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI

from bench.fast_path import (
    BODY_FILE,
    answered_by_fast_path,
    ceiling,
    fast_path_of,
    parts_of_a_304,
)
from skilltree.platform.db import Database
from skilltree.roadmaps import service
from skilltree.roadmaps.importing import parse_roadmap
from skilltree.roadmaps.policies import OPERATOR


async def test_the_ceiling_sends_the_given_bytes_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"topics":[' + b'{"slug":"x"},' * 1000 + b'{"slug":"y"}]}'
    (tmp_path / "tree.json").write_bytes(body)
    monkeypatch.setenv(BODY_FILE, str(tmp_path / "tree.json"))

    transport = httpx.ASGITransport(app=ceiling())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.get("/")

    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "application/json"


@pytest.fixture
async def small_roadmap(database: Database) -> str:
    """The tree path of a one-topic roadmap."""
    roadmap = {"slug": "small", "title": "Small", "topics": [{"slug": "a", "title": "A"}]}
    async with database.unit_of_work() as session:
        await service.import_roadmap(
            session, parse_roadmap(orjson.dumps(roadmap), "json"), viewer=OPERATOR
        )
    return "/v1/roadmaps/small/tree"


async def test_the_tree_requests_the_fast_path_answered_are_counted(
    app: FastAPI, client: httpx.AsyncClient, small_roadmap: str
) -> None:
    responses = [await client.get(small_roadmap) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    # The first request fills the cache; the fast path answers the next two from it.
    assert answered_by_fast_path(app) == 2


async def test_the_parts_of_a_304_are_switched_off_in_turn_and_back_on(
    app: FastAPI, client: httpx.AsyncClient, small_roadmap: str
) -> None:
    first = await client.get(small_roadmap)
    await client.get(small_roadmap)  # now from the fast path's copy
    layer = fast_path_of(app)
    assert layer is not None
    limiter, access_log, answered = layer.limiter, layer.access_log, layer.answered

    validator = [(b"if-none-match", first.headers["etag"].encode())]
    timings = await parts_of_a_304(app, validator, 1, 5, small_roadmap)

    assert list(timings) == [
        "tree, 304, as served",
        "tree, 304, no access log",
        "tree, 304, no limiter",
        "tree, 304, neither",
    ]
    assert all(len(values) == 1 and values[0] > 0 for values in timings.values())
    assert layer.answered == answered + 4 * (200 + 5)  # every one answered in front
    assert (layer.limiter, layer.access_log) == (limiter, access_log)
