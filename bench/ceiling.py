"""The same-work ceiling: for each endpoint, the least an app can do that does skilltree's work.

`make bench` captures each endpoint from skilltree itself (bench/capture.py): after warm-up
requests, it sends each request `ROUNDS` times with capture on and keeps, per request, the driver
calls in order with their parameters and the response. `build_spec` turns the captures into a
`Spec`; the ceiling app (`app`, served like the baselines) answers `/{endpoint}` by making the
same calls with the same parameters — asyncpg or aiosqlite directly, redis-py for Redis — and
sending the same status, headers and body. No ORM, no framework, no middleware: what skilltree
does beyond that is the cost of its own layers. `framework` makes the same calls from one
FastAPI route: between the two lies what the framework alone costs that work.

An endpoint whose requests differ (a write that alternates between two statuses) has one variant
per request body; the ceiling cycles through them as wrk does. A parameter that differs between
the captured rounds of a variant is made per request (a request id, an event's time, a message
id): the ceiling sends a fresh one of the same kind, so an insert into a column with a unique
constraint inserts a new row each time as skilltree's does. Calls made after the response began
(work after the commit) are made after the ceiling's response too.

See docs/decisions/0056-same-work-ceiling.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from starlette.background import BackgroundTask

from bench.capture import CAPTURE_HEADER, Call, Record, read_record
from bench.endpoints import Endpoint

WARMUPS = 2  # rounds before the captured ones: connections open, statements prepared, caches full
ROUNDS = 2  # captured rounds: a parameter that differs between them is fresh per request

SPEC = "BENCH_CEILING_SPEC"
DATABASE = "BENCH_CEILING_DATABASE"  # a postgresql:// DSN, or the path of a SQLite file
REDIS = "BENCH_CEILING_REDIS"
POOL = "BENCH_CEILING_POOL"  # connections, as many as skilltree's pool holds at most


# --- capturing ---------------------------------------------------------------------------------


async def capture(
    client: httpx.AsyncClient, endpoints: list[Endpoint], directory: Path
) -> dict[str, list[list[Record]]]:
    """Each endpoint's captured rounds (each a list of one record per variant), through a client
    of the skilltree that `bench.capture:create_app` serves (or `CaptureMiddleware` wraps)."""
    captured: dict[str, list[list[Record]]] = {}
    for endpoint in endpoints:
        captured[endpoint.key] = [
            await capture_round(client, endpoint, directory, f"{endpoint.key}.{number}")
            for number in range(WARMUPS + ROUNDS)
        ][WARMUPS:]
    return captured


async def capture_round(
    client: httpx.AsyncClient, endpoint: Endpoint, directory: Path, name: str
) -> list[Record]:
    """One request per variant of the endpoint, each recorded as `name.variant`."""
    bodies: tuple[str | None, ...] = endpoint.bodies or (None,)
    records = []
    for variant, body in enumerate(bodies):
        # Only the endpoint's own headers, as wrk sends them: no cookie the client kept from
        # signing in (the public tree would be read as the account's).
        client.cookies.clear()
        headers = endpoint.headers | {CAPTURE_HEADER.decode(): f"{name}.{variant}"}
        request = client.build_request(endpoint.method, endpoint.path, headers=headers,
                                       content=body)  # fmt: skip
        for default in ("accept-encoding", "accept"):  # httpx's own, which wrk does not send
            if default not in {key.lower() for key in endpoint.headers}:
                del request.headers[default]
        response = await client.send(request)
        if response.status_code >= 400:
            raise RuntimeError(f"{endpoint.name}: {response.status_code} {response.text[:300]}")
        records.append(read_record(directory, f"{name}.{variant}"))
    return records


# --- the replay's specification ----------------------------------------------------------------


@dataclass(frozen=True)
class Fresh:
    """A parameter made anew for each request (it differed between the captured rounds)."""

    value: Any


@dataclass
class Variant:
    calls: list[Call]  # arguments may hold Fresh values
    split: int
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    fresh: list[bool] = field(default_factory=list)  # per call: whether any argument is Fresh
    # On SQLite a unit of work that writes holds the process's write lock (as skilltree's do).
    writes_sqlite: bool = False


@dataclass
class Spec:
    endpoints: dict[str, list[Variant]]


def build_spec(captured: dict[str, list[list[Record]]]) -> Spec:
    endpoints = {}
    for key, rounds in captured.items():
        first, *others = rounds
        variants = []
        for index, record in enumerate(first):
            calls = record.calls
            for other in others:
                calls = _marked(key, calls, other[index].calls)
            variants.append(
                Variant(
                    calls=calls,
                    split=record.split,
                    status=record.status,
                    headers=record.headers,
                    body=record.body,
                    fresh=[_has_fresh(call.args) for call in calls],
                    writes_sqlite=any(c.text.startswith("BEGIN IMMEDIATE") for c in calls),
                )
            )
        endpoints[key] = variants
    return Spec(endpoints)


def _marked(key: str, calls: list[Call], others: list[Call]) -> list[Call]:
    """The calls with the parameters that differ from the other round's marked Fresh."""
    if [c.describe() for c in calls] != [c.describe() for c in others]:
        # Not the same work twice (a cache filled in between): the first round as captured.
        print(f"warning: {key}: the captured rounds made different calls", file=sys.stderr)
        return calls
    return [
        Call(call.kind, call.text, _template(call.args, other.args))
        for call, other in zip(calls, others, strict=True)
    ]


def _template(value: Any, other: Any) -> Any:
    if isinstance(value, tuple) and isinstance(other, tuple) and len(value) == len(other):
        return tuple(_template(a, b) for a, b in zip(value, other, strict=True))
    if type(value) is type(other) and value == other:
        return value
    return Fresh(value)


def _has_fresh(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_has_fresh(item) for item in value)
    return isinstance(value, Fresh)


HEX_ID = re.compile(
    r"\b[0-9a-f]{32}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


def render(value: Any, ids: dict[str, str]) -> Any:
    """The arguments of one call for this request: each Fresh value made anew, the same id
    always replaced by the same new id within the request (an id in a row and in a JSON
    document that names it)."""
    if isinstance(value, tuple):
        return tuple(render(item, ids) for item in value)
    if not isinstance(value, Fresh):
        return value
    made = value.value
    if isinstance(made, datetime):
        return datetime.now(made.tzinfo)
    if isinstance(made, uuid.UUID):
        return uuid.UUID(_new_id(str(made), ids))
    if isinstance(made, str):
        return HEX_ID.sub(lambda match: _new_id(match.group(0), ids), made)
    return made  # a number the server handed out (an inserted row's id): the captured one


def _new_id(old: str, ids: dict[str, str]) -> str:
    if old not in ids:
        new = uuid.uuid4()
        ids[old] = str(new) if "-" in old else new.hex
    return ids[old]


def write_spec(spec: Spec, path: Path) -> None:
    path.write_bytes(pickle.dumps(spec))


def read_spec(path: Path) -> Spec:
    spec = pickle.loads(path.read_bytes())  # noqa: S301 (written by this run)
    assert isinstance(spec, Spec)
    return spec


# --- the ceiling -------------------------------------------------------------------------------


class Ceiling:
    """Makes a variant's calls: on PostgreSQL through asyncpg, on SQLite through aiosqlite."""

    def __init__(self, spec: Spec, database: str, redis_url: str | None, pool: int) -> None:
        self.spec = spec
        self.database = database
        self.redis_url = redis_url
        self.pool_size = pool
        self.turns = dict.fromkeys(spec.endpoints, 0)
        self._idle: asyncio.Queue[Any] = asyncio.Queue()
        self._connections: list[Any] = []
        self._write_lock = asyncio.Lock()
        self._redis: Any = None
        self.sqlite = not database.startswith("postgres")

    async def start(self) -> None:
        for _ in range(self.pool_size):
            connection = await self._connect()
            self._connections.append(connection)
            self._idle.put_nowait(connection)
        if self.redis_url:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(self.redis_url)

    async def _connect(self) -> Any:
        if not self.sqlite:
            import asyncpg

            return await asyncpg.connect(self.database)
        import aiosqlite

        connection = await aiosqlite.connect(self.database, isolation_level=None)
        for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL",
                       "busy_timeout = 30000"):  # fmt: skip
            await (await connection.execute(f"PRAGMA {pragma}")).close()
        return connection

    async def stop(self) -> None:
        for connection in self._connections:
            await connection.close()
        if self._redis is not None:
            await self._redis.aclose()

    def next_variant(self, key: str) -> Variant:
        variants = self.spec.endpoints[key]
        turn = self.turns[key]
        self.turns[key] = turn + 1
        return variants[turn % len(variants)]

    async def run(self, variant: Variant, start: int, stop: int, held: list[Any]) -> None:
        """Make calls start..stop of the variant; `held` keeps the request's connection."""
        ids: dict[str, str] = {}
        for index in range(start, stop):
            call = variant.calls[index]
            args = render(call.args, ids) if variant.fresh[index] else call.args
            if call.is_sql:
                if not held:
                    held.append(await self._idle.get())
                await (self._sqlite if self.sqlite else self._postgresql)(held[0], call, args)
            elif call.kind == "redis":
                await self._redis.execute_command(call.text, *args)
            else:
                pipe = self._redis.pipeline(transaction=call.text == "MULTI")
                for command in args:
                    pipe.execute_command(*command)
                await pipe.execute()

    def release(self, held: list[Any]) -> None:
        if held:
            self._idle.put_nowait(held.pop())

    @staticmethod
    async def _postgresql(connection: Any, call: Call, args: tuple[Any, ...]) -> None:
        if call.kind == "sql-many":
            await connection.executemany(call.text, args)
            return
        method, *parameters = args
        await getattr(connection, method)(call.text, *parameters)

    @staticmethod
    async def _sqlite(connection: Any, call: Call, args: tuple[Any, ...]) -> None:
        if call.kind == "sql-many":
            cursor = await connection.cursor()
            await cursor.executemany(call.text, args)
            await cursor.close()
            return
        method, *parameters = args
        if method == "control":
            await getattr(connection, call.text.lower())()  # commit() or rollback()
            return
        cursor = await connection.cursor()
        await cursor.execute(call.text, parameters)
        await cursor.fetchall()
        await cursor.close()

    async def begin(self, key: str) -> Work:
        """One request up to its response: the next variant's unit (on SQLite, the write lock
        when it writes) and the calls before the response. `Work.finish` makes the rest."""
        variant = self.next_variant(key)
        unit = contextlib.AsyncExitStack()
        if self.sqlite and variant.writes_sqlite:
            await unit.enter_async_context(self._write_lock)
        work = Work(self, variant, unit)
        try:
            await self.run(variant, 0, variant.split, work.held)
        except BaseException:
            await work.end()
            raise
        return work

    async def serve(self, key: str, send: Any) -> None:
        """One request: the calls before the response, the response, the calls after it."""
        work = await self.begin(key)
        variant = work.variant
        try:
            await send({"type": "http.response.start", "status": variant.status,
                        "headers": variant.headers})  # fmt: skip
            await send({"type": "http.response.body", "body": variant.body})
        except BaseException:
            await work.end()
            raise
        await work.finish()


@dataclass
class Work:
    """A request the ceiling has begun: its connection, once it needs one, and its unit."""

    ceiling: Ceiling
    variant: Variant
    unit: contextlib.AsyncExitStack
    held: list[Any] = field(default_factory=list)

    async def finish(self) -> None:
        """The calls after the response (work after the commit), then the request's end."""
        try:
            await self.ceiling.run(self.variant, self.variant.split, len(self.variant.calls),
                                   self.held)  # fmt: skip
        finally:
            await self.end()

    async def end(self) -> None:
        self.ceiling.release(self.held)
        await self.unit.aclose()


# --- the ASGI app ------------------------------------------------------------------------------


class CeilingApp:
    """`/{endpoint}` answers as skilltree's endpoint did, doing its work (configured from the
    environment: the spec's file, the database, Redis, the pool's size); `/` answers 200 for
    the bench's check that the server is up."""

    def __init__(self) -> None:
        self.ceiling: Ceiling | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):  # a write's body: read, as skilltree does
            pass
        key = scope["path"].strip("/")
        if self.ceiling is None or key not in self.ceiling.spec.endpoints:
            await send({"type": "http.response.start", "status": 200 if not key else 404,
                        "headers": [(b"content-length", b"2")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await self.ceiling.serve(key, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.ceiling = Ceiling(
                    read_spec(Path(os.environ[SPEC])),
                    os.environ[DATABASE],
                    os.environ.get(REDIS) or None,
                    int(os.environ[POOL]),
                )
                await self.ceiling.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.ceiling is not None:
                    await self.ceiling.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = CeilingApp()


# --- the same work inside FastAPI --------------------------------------------------------------


def framework(top: Ceiling | None = None) -> FastAPI:
    """The ceiling's work done by one FastAPI route (served with --factory): `/{endpoint}` makes
    the same calls and answers with the same status, headers and body, the calls after the
    response made as a background task (what FastAPI runs after sending). No middleware, no
    dependency but the path parameter and the request: what the framework alone allows for that
    work, between the ceiling (none) and skilltree (its layers). `top` is the ceiling to use
    (tests); without it, the lifespan starts one from the environment, as `app` does."""

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        started = top
        if started is None:
            started = Ceiling(read_spec(Path(os.environ[SPEC])), os.environ[DATABASE],
                              os.environ.get(REDIS) or None, int(os.environ[POOL]))  # fmt: skip
            await started.start()
        application.state.ceiling = started
        try:
            yield
        finally:
            if top is None:
                await started.stop()

    application = FastAPI(lifespan=lifespan, openapi_url=None)

    @application.get("/")
    async def up() -> Response:
        return Response(b"{}", media_type="application/json")

    @application.api_route("/{key}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def same_work(key: str, request: Request) -> Response:
        ceiling: Ceiling = request.app.state.ceiling
        if key not in ceiling.spec.endpoints:
            return Response(b"{}", status_code=404)
        await request.body()  # a write's body: read, as skilltree does
        work = await ceiling.begin(key)
        response = Response(work.variant.body, status_code=work.variant.status,
                            background=BackgroundTask(work.finish))  # fmt: skip
        response.raw_headers = list(work.variant.headers)
        return response

    return application


# --- keeping in step ---------------------------------------------------------------------------


def differences(skilltree: Record, ceiling: Record) -> list[str]:
    """How the ceiling's calls for a request differ from skilltree's (none when in step)."""
    ours, theirs = skilltree.describe(), ceiling.describe()
    if ours == theirs:
        return []
    lines = [f"skilltree made {len(ours)} calls, the ceiling {len(theirs)}:"]
    for index in range(max(len(ours), len(theirs))):
        a = ours[index] if index < len(ours) else "-"
        b = theirs[index] if index < len(theirs) else "-"
        if a != b:
            lines.append(f"  #{index}: skilltree {a[:120]!r} / ceiling {b[:120]!r}")
    return lines
