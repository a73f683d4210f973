"""The same-work ceiling stays in step with skilltree: for every endpoint `make bench` measures,
the ceiling makes the database statements and Redis calls skilltree makes for a request, in the
same order, and answers with the same status and body; when skilltree makes one more statement,
the comparison says so."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from typer.testing import CliRunner

from bench import ceiling
from bench.capture import Call, CaptureMiddleware, Record, recording
from bench.endpoints import Endpoint, page_endpoints, skilltree_endpoints
from bench.stage import (
    REDIS_URL,
    asyncpg_dsn,
    prepare,
    redis_prefix,
    sign_in_with,
    skilltree_env,
    sqlite_path,
    throwaway_database,
    throwaway_sqlite,
)
from skilltree.app import create_app
from skilltree.cli import app as cli
from skilltree.platform.config import load_settings


def test_a_parameter_that_differs_between_rounds_is_made_anew_for_each_request() -> None:
    def record(message_id: str, at: dt.datetime) -> Record:
        body = f'{{"id": "{message_id}"}}'
        insert = Call("sql", "INSERT INTO outbox VALUES ($1, $2, $3)", ("fetch", message_id, at, 7))
        document = Call("sql", "INSERT INTO docs VALUES ($1)", ("fetch", body))
        return Record(calls=[insert, document], split=2, status=200, body=b"{}")

    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    spec = ceiling.build_spec({"write": [[record(first, now)], [record(second, now)]]})
    variant = spec.endpoints["write"][0]

    ids: dict[str, str] = {}
    insert = ceiling.render(variant.calls[0].args, ids)
    document = ceiling.render(variant.calls[1].args, ids)

    assert insert[1] not in (first, second)
    assert len(insert[1]) == 32
    assert insert[2] == now  # the same in both rounds: kept
    assert insert[3] == 7
    assert document[1] == f'{{"id": "{insert[1]}"}}'  # the same new id in the document


def test_one_more_statement_is_a_difference() -> None:
    begin = Call("sql", "BEGIN;", ("execute",))
    select = Call("sql", "SELECT 1", ("fetch",))
    commit = Call("sql", "COMMIT;", ("execute",))

    same = Record([begin, select, commit])
    assert ceiling.differences(same, Record([begin, select, commit])) == []
    differences = ceiling.differences(Record([begin, select, select, commit]), same)
    assert differences[0] == "skilltree made 4 calls, the ceiling 3:"


# --- against skilltree, on PostgreSQL and Redis and on SQLite ------------------------------------


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def staged(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A database staged as `make bench` stages it (PostgreSQL and Redis, or the embedded
    default: SQLite alone), and skilltree's settings for it."""
    sqlite = request.param == "sqlite"
    with (
        throwaway_sqlite() if sqlite else throwaway_database() as database_url,
        redis_prefix() as prefix,
    ):
        env = skilltree_env(database_url, None if sqlite else prefix)
        prepare(env, cli=in_process)
        yield env


def in_process(env: dict[str, str], *args: str) -> None:
    """One `skilltree` command run in this process: the same command as the program, without
    starting an interpreter and importing skilltree again for each of the three."""
    done = CliRunner().invoke(cli, list(args), env=env)
    assert done.exit_code == 0, f"skilltree {' '.join(args)}: {done.output}"


@pytest.fixture
async def skilltree(
    staged: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """skilltree in production shape, in this process, recording the requests that ask."""
    monkeypatch.delenv("SKILLTREE_REDIS_URL", raising=False)  # none on SQLite
    for key, value in staged.items():
        monkeypatch.setenv(key, value)
    application = create_app(load_settings())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=CaptureMiddleware(application, tmp_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client


async def replayed(top: ceiling.Ceiling, key: str) -> tuple[Record, list[dict[str, Any]]]:
    """The calls the ceiling makes for one request, and what it sends."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with recording() as calls:
        await top.serve(key, send)
    return Record(list(calls)), sent


@asynccontextmanager
async def framework_client(top: ceiling.Ceiling) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the ceiling's work in a FastAPI route (`ceiling.framework`), on `top`."""
    application = ceiling.framework(top)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client


async def replayed_in_framework(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> tuple[Record, httpx.Response, bytes]:
    """The calls the FastAPI route makes for one request, its response, and its body as sent
    (a brotli page still compressed)."""
    body = endpoint.bodies[0] if endpoint.bodies else None
    request = client.build_request(endpoint.method, f"/{endpoint.key}", content=body)
    with recording() as calls:
        response = await client.send(request, stream=True)
        sent = b"".join([chunk async for chunk in response.aiter_raw()])
    return Record(list(calls)), response, sent


async def test_the_ceiling_makes_the_calls_skilltree_makes(
    skilltree: httpx.AsyncClient, staged: dict[str, str], tmp_path: Path
) -> None:
    session = await sign_in_with(skilltree, finished_topics=5)
    endpoints: list[Endpoint] = [*skilltree_endpoints(session), *page_endpoints(session)]
    spec = ceiling.build_spec(await ceiling.capture(skilltree, endpoints, tmp_path))
    url = staged["SKILLTREE_DATABASE_URL"]
    if url.startswith("sqlite"):
        top = ceiling.Ceiling(spec, sqlite_path(url), None, pool=2)
    else:
        top = ceiling.Ceiling(spec, asyncpg_dsn(url), REDIS_URL, pool=2)
    await top.start()
    try:
        for endpoint in endpoints:
            # skilltree's next requests, captured after the ceiling was built from earlier ones
            # (after one round that refills what the writes captured since have invalidated)
            await ceiling.capture_round(skilltree, endpoint, tmp_path, f"{endpoint.key}.warm")
            fresh = await ceiling.capture_round(skilltree, endpoint, tmp_path, f"{endpoint.key}.x")
            for variant, theirs in enumerate(fresh):
                ours, sent = await replayed(top, endpoint.key)

                assert ceiling.differences(theirs, ours) == [], (endpoint.name, variant)
                assert sent[0]["status"] == theirs.status
                # The same size (a page carries a nonce of its own, compressed with the rest)
                assert len(sent[1]["body"]) == pytest.approx(len(theirs.body), rel=0.02)
            # The same work from a FastAPI route: the same calls, status, headers and body.
            async with framework_client(top) as framework:
                variants = top.spec.endpoints[endpoint.key]
                for variant, (theirs, expected) in enumerate(zip(fresh, variants, strict=True)):
                    ours, response, sent_body = await replayed_in_framework(framework, endpoint)

                    assert ceiling.differences(theirs, ours) == [], (endpoint.name, variant)
                    assert response.status_code == theirs.status
                    assert sent_body == expected.body
                    assert list(response.headers.raw) == expected.headers
        statements = sum(len(v.calls) for v in spec.endpoints["write"])
        # The write's statements (the reads are answered from what the process keeps): not an
        # empty comparison.
        assert statements >= 1

        # skilltree begins to run one more statement in every unit of work: the ceiling, built
        # before, is no longer in step, and the comparison shows it.
        def one_more(_session: Any, _transaction: Any, connection: Any) -> None:
            connection.exec_driver_sql("SELECT 1")

        write = next(e for e in endpoints if e.key == "write")
        event.listen(OrmSession, "after_begin", one_more)
        try:
            theirs, *_ = await ceiling.capture_round(skilltree, write, tmp_path, "write.extra")
        finally:
            event.remove(OrmSession, "after_begin", one_more)
        ours, _sent = await replayed(top, "write")

        assert "sql: SELECT 1" in theirs.describe()
        assert ceiling.differences(theirs, ours) != []
    finally:
        await top.stop()


def test_the_rate_limiters_lease_is_left_out_of_a_capture_and_other_scripts_are_not() -> None:
    """Whether a request takes a lease depends on the requests before it: recorded, it would
    make two captures of one endpoint differ. (The call is recorded before it is sent, so a
    server that is not there is enough.)"""
    nowhere = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)

    async def evalsha_each(keys: tuple[str, ...]) -> list[Call]:
        with recording() as calls:
            for key in keys:
                with pytest.raises(RedisConnectionError):
                    await nowhere.execute_command("EVALSHA", "0" * 40, 1, key, 1)
        return calls

    calls = asyncio.run(evalsha_each(("st:ratelimit:write:1", "st:other:1")))
    assert [call.args[2] for call in calls] == ["st:other:1"]
