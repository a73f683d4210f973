"""The fast path (platform/http/fast_path.py) answers cached public reads with exactly what the
full middleware stack answers: each request is sent to an app with the fast path and to one
without it, over one database and one Redis (or, on the embedded default, without Redis: each
app's cache in its own memory), and the two responses and access-log lines must be the same but
for the request id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import (
    HttpSettings,
    LogSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
)
from skilltree.platform.db import Database
from skilltree.platform.observability.logging import configure_logging
from skilltree.roadmaps import service
from skilltree.roadmaps.importing import parse_roadmap
from skilltree.roadmaps.policies import OPERATOR
from tests.support.fast_path import (
    BOTH_BACKENDS,
    access_lines,
    comparable,
    fast_path_of,
    production_shape,
    serving,
)

# Large enough to be compressed (over SKILLTREE_HTTP_COMPRESSION_MIN_BYTES).
ROADMAP: dict[str, Any] = {
    "slug": "wide",
    "title": "Wide",
    "topics": [
        {
            "slug": f"topic-{n}",
            "title": f"Topic {n}",
            "summary": "A summary long enough to make the tree worth compressing. " * 2,
            "children": [{"slug": f"child-{n}", "title": f"Child {n}"}],
        }
        for n in range(20)
    ],
}
TREE = "/v1/roadmaps/wide/tree"
TOPIC = "/v1/roadmaps/wide/topics/topic-3"


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return production_shape(settings, shared_state)


@asynccontextmanager
async def both_paths(
    settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI]]:
    """A client of an app with the fast path, and one of an app without it."""
    fast_app = create_app(settings, database=database, clock=clock)
    without = settings.model_copy(update={"http": HttpSettings(fast_path=False)})
    ordinary_app = create_app(without, database=database, clock=clock)
    async with database.unit_of_work() as session:
        await service.import_roadmap(
            session, parse_roadmap(orjson.dumps(ROADMAP), "json"), viewer=OPERATOR
        )
    async with serving(fast_app) as fast, serving(ordinary_app) as ordinary:
        yield fast, ordinary, fast_app


async def requests_to_compare(client: httpx.AsyncClient) -> list[httpx.Response]:
    # httpx asks for gzip and brotli unless told otherwise: the identity's ETag.
    etag = (await client.get(TREE, headers={"accept-encoding": "identity"})).headers["etag"]
    br_etag = etag[:-1] + '-br"'
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("GET", TREE, {}),
        ("GET", TREE, {"accept-encoding": "br"}),
        ("GET", TREE, {"accept-encoding": "gzip, deflate"}),
        ("GET", TREE, {"accept-encoding": "br;q=0.5, gzip"}),
        ("GET", TREE, {"accept-encoding": "identity, br;q=0"}),
        ("GET", TREE, {"if-none-match": etag}),
        ("GET", TREE, {"if-none-match": f'W/{etag}, "other"'}),
        ("GET", TREE, {"if-none-match": br_etag, "accept-encoding": "br"}),
        ("GET", TREE, {"if-none-match": '"stale"', "accept-encoding": "gzip"}),
        ("GET", TREE, {"origin": "http://test"}),
        ("GET", TREE, {"origin": "https://elsewhere.example"}),
        ("GET", TREE, {"x-request-id": "given-id"}),
        ("GET", TREE, {"cookie": "theme=dark"}),
        # The session cookie as the application parses it (the name trimmed): a bad one is 401.
        ("GET", TREE, {"cookie": "skilltree_session =not-a-session"}),
        ("GET", TREE + "?page=2", {}),
        ("HEAD", TREE, {}),
        ("GET", TREE, {"authorization": "Bearer not-a-token"}),
        ("GET", TOPIC, {}),
        ("GET", TOPIC, {"accept-encoding": "br"}),
        ("GET", "/v1/roadmaps/nothing-here/tree", {}),
    ]
    return [await client.request(method, path, headers=h) for method, path, h in cases]


@BOTH_BACKENDS
async def test_the_fast_path_answers_as_the_full_stack_does(
    settings: Settings, database: Database, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    async with both_paths(settings, database, clock) as (fast, ordinary, fast_app):
        for client in (fast, ordinary):  # each instance's local copies filled
            await client.get(TREE)
            await client.get(TOPIC)
        answered_before = fast_path_of(fast_app).answered
        await asyncio.sleep(0)  # the access log writes a loop turn's lines at the next
        capsys.readouterr()
        by_fast_path = await requests_to_compare(fast)
        await asyncio.sleep(0)
        fast_log = capsys.readouterr().out
        answered = fast_path_of(fast_app).answered - answered_before
        by_stack = await requests_to_compare(ordinary)
        await asyncio.sleep(0)
        ordinary_log = capsys.readouterr().out

    assert [comparable(r) for r in by_fast_path] == [comparable(r) for r in by_stack]
    assert len(access_lines(fast_log)) == 1 + len(by_fast_path)  # and the ETag's request
    assert access_lines(fast_log) == access_lines(ordinary_log)
    statuses = [r.status_code for r in by_fast_path]
    assert statuses == [200] * 5 + [304, 304, 304] + [200] * 5 + [401, 200, 200, 401, 200, 200, 404]
    # The plain reads, the 304s and the cross-origin ones, not HEAD, queries or credentials.
    assert answered == 1 + 15
    assert by_fast_path[1].headers["content-encoding"] == "br"
    assert by_fast_path[7].headers["etag"].endswith('-br"')
    # A 304 carries the Vary its 200 would (RFC 9110 §15.4.5): a shared cache that freshens
    # its stored headers from it must go on keeping the codings apart.
    assert by_fast_path[5].headers["vary"] == by_fast_path[0].headers["vary"]
    assert by_fast_path[9].headers["vary"] == "Accept-Encoding, Origin"


@BOTH_BACKENDS
async def test_over_the_limit_the_fast_path_answers_429_like_the_stack(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    tight = settings.model_copy(update={"rate_limit": RateLimitSettings(read="3/minute")})
    async with both_paths(tight, database, clock) as (fast, _ordinary, fast_app):
        responses = [await fast.get(TREE) for _ in range(4)]
        answered = fast_path_of(fast_app).answered

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert answered == 2  # the first filled the local copy through the stack
    refused = responses[3]
    assert refused.headers["retry-after"]
    assert refused.headers["ratelimit"].startswith('"read";r=0;')
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.headers["content-type"] == "application/problem+json"


@pytest.mark.redis
@pytest.mark.parametrize("shared_state", ["redis"], indirect=True)
async def test_a_write_on_one_instance_is_seen_by_the_fast_path_of_another_within_100_ms(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    async with both_paths(settings, database, clock) as (fast, other, fast_app):
        before = await fast.get(TREE)
        await fast.get(TREE)
        answered = fast_path_of(fast_app).answered
        # A write through the other instance: its commit invalidates and announces.
        other_app = other._transport.app  # type: ignore[attr-defined]
        other_db: Database = other_app.state.resources.database
        changed = {**ROADMAP, "title": "Wider"}
        async with other_db.unit_of_work() as session:
            await service.import_roadmap(
                session, parse_roadmap(orjson.dumps(changed), "json"), viewer=OPERATOR
            )
        started = time.monotonic()
        while (after := await fast.get(TREE)).headers["etag"] == before.headers["etag"]:
            assert time.monotonic() - started < 0.1, "the change was not seen within 100 ms"
            await asyncio.sleep(0.002)

    assert answered >= 1
    assert orjson.loads(after.content)["roadmap"]["title"] == "Wider"


async def import_as_operator(database: Database, document: dict[str, Any]) -> None:
    """A roadmap import committed by an operator: its commit invalidates "roadmap:<slug>"."""
    async with database.unit_of_work() as session:
        await service.import_roadmap(
            session, parse_roadmap(orjson.dumps(document), "json"), viewer=OPERATOR
        )


@pytest.mark.parametrize("shared_state", ["database"], indirect=True)
async def test_on_the_embedded_default_a_write_is_seen_by_the_very_next_read(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    """Without Redis the cache is this process's own: the fast path answers from it, and a
    write's invalidation is seen by the next request at once, in each of its variants."""
    await import_as_operator(database, ROADMAP)
    app = create_app(settings, database=database, clock=clock)
    async with serving(app) as client:
        identity = {"accept-encoding": "identity"}
        await client.get(TREE, headers=identity)  # through the stack: fills the cache
        fast_path = fast_path_of(app)
        answered_before = fast_path.answered
        before = await client.get(TREE, headers=identity)
        before_br = await client.get(TREE, headers={"accept-encoding": "br"})
        before_gzip = await client.get(TREE, headers={"accept-encoding": "gzip"})
        unchanged = await client.get(TREE, headers={"if-none-match": before.headers["etag"]})
        answered_while_unchanged = fast_path.answered - answered_before
        await import_as_operator(app.state.resources.database, {**ROADMAP, "title": "Wider"})
        stale_etag = await client.get(
            TREE, headers={"if-none-match": before.headers["etag"], **identity}
        )
        after = await client.get(TREE, headers=identity)
        after_br = await client.get(TREE, headers={"accept-encoding": "br"})
        after_gzip = await client.get(TREE, headers={"accept-encoding": "gzip"})
        answered_after = fast_path.answered - answered_before

    assert answered_while_unchanged == 4
    assert unchanged.status_code == 304
    assert before_br.headers["content-encoding"] == "br"
    assert before_gzip.headers["content-encoding"] == "gzip"
    assert before_br.content == before_gzip.content == before.content  # decoded by httpx
    # The first read after the write went through the stack (a miss) and saw the change;
    # the three after it were answered by the fast path from the new entry.
    assert stale_etag.status_code == 200
    assert orjson.loads(stale_etag.content)["roadmap"]["title"] == "Wider"
    assert after.headers["etag"] == stale_etag.headers["etag"] != before.headers["etag"]
    assert after_br.headers["etag"] == after.headers["etag"][:-1] + '-br"'
    assert after_br.content == after_gzip.content == after.content == stale_etag.content
    assert answered_after == 4 + 3
