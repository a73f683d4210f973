"""Recording what one request of skilltree asks of its database and of Redis, from outside.

`create_app` is an ASGI factory for benchmarks only: it builds skilltree exactly as
`skilltree serve` does and wraps it in `CaptureMiddleware`. A request that carries the header
`x-bench-capture: NAME` is recorded; every other request runs as usual. The record is written to
`$SKILLTREE_BENCH_CAPTURE_DIR/NAME.pickle` once the response is sent: the calls the request made
to the database driver and to the Redis client, in order, with their parameters, and the
response's status, headers and body.

The calls are recorded at the drivers (asyncpg, aiosqlite, redis-py), not in skilltree's code or
SQLAlchemy: each recorded call is one round trip to the server (or, on SQLite, one hop to the
connection's thread), including the transaction control and any connection check, whatever layer
issued it. So a statement skilltree adds, removes or changes is in the next capture without
anyone writing it down (docs/decisions/0056-same-work-ceiling.md). The drivers' methods are
patched at class level; they record only inside a request being captured (a context variable),
so the rest of the process — other requests, background jobs — is not recorded.

The same patches record the ceiling app (bench/ceiling.py), which is how tests/bench checks that
the ceiling replays skilltree's calls and no others.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import os
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CAPTURE_HEADER = b"x-bench-capture"
CAPTURE_DIR = "SKILLTREE_BENCH_CAPTURE_DIR"
# Work a request starts and does not wait for (an after-commit notification) usually runs within
# a few milliseconds of the response; waiting this long before writing the record includes it.
SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class Call:
    """One call to a driver: which (`sql`, `sql-many`, `redis`, `redis-pipeline`), the
    statement or command, and its arguments (for `sql-many` and `redis-pipeline`, one tuple of
    arguments per statement or command)."""

    kind: str
    text: str
    args: tuple[Any, ...] = ()

    @property
    def is_sql(self) -> bool:
        return self.kind.startswith("sql")

    def describe(self) -> str:
        """The call without its arguments: what tests compare (ids and times differ per run)."""
        if self.kind == "redis-pipeline":
            return f"redis pipeline: {' '.join(str(a[0]) for a in self.args)}"
        return f"{self.kind}: {' '.join(self.text.split())}"


@dataclass
class Record:
    """What one request did: its driver calls in order, and the response it got."""

    calls: list[Call] = field(default_factory=list)
    split: int = 0  # how many of the calls came before the response began
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    @property
    def statements(self) -> int:
        return sum(1 for call in self.calls if call.is_sql)

    @property
    def redis_calls(self) -> int:
        return sum(1 for call in self.calls if not call.is_sql)

    def describe(self) -> list[str]:
        return [call.describe() for call in self.calls]


_RECORDING: ContextVar[list[Call] | None] = ContextVar("bench_recording", default=None)


@contextmanager
def recording() -> Iterator[list[Call]]:
    """Record the driver calls made in this context (and in tasks it starts) into the list."""
    install_recorders()
    calls: list[Call] = []
    token = _RECORDING.set(calls)
    try:
        yield calls
    finally:
        _RECORDING.reset(token)


def _record(call: Call) -> None:
    calls = _RECORDING.get()
    if calls is not None:
        calls.append(Call(call.kind, call.text, _plain(call.args)))


def _plain(value: Any) -> Any:
    """The value as the driver sends it: an enum member is its value (so reading a record
    needs none of skilltree's classes)."""
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _patch(cls: type, name: str, make_call: Callable[..., Call | None]) -> None:
    original = getattr(cls, name)
    if getattr(original, "__bench_recorder__", False):
        return

    @functools.wraps(original)
    async def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _RECORDING.get() is not None:
            call = make_call(self, *args, **kwargs)
            if call is not None:
                _record(call)
        return await original(self, *args, **kwargs)

    recorded.__bench_recorder__ = True  # type: ignore[attr-defined]
    setattr(cls, name, recorded)


def install_recorders() -> None:
    """Patch the drivers' round-trip methods (idempotent)."""
    import aiosqlite
    import asyncpg.connection  # type: ignore[import-untyped]
    import asyncpg.prepared_stmt  # type: ignore[import-untyped]
    import redis.asyncio.client

    def query(op: str) -> Callable[..., Call]:
        def make(_self: Any, text: str, *args: Any, **_kw: Any) -> Call:
            return Call("sql", text, (op, *args))

        return make

    def prepared(op: str) -> Callable[..., Call]:
        def make(self: Any, *args: Any, **_kw: Any) -> Call:
            return Call("sql", self.get_query(), (op, *args))

        return make

    def many(_self: Any, text: str, args: Any, **_kw: Any) -> Call:
        return Call("sql-many", text, tuple(tuple(a) for a in args))

    def prepared_many(self: Any, args: Any, **_kw: Any) -> Call:
        return Call("sql-many", self.get_query(), tuple(tuple(a) for a in args))

    # asyncpg: Transaction.start/commit/rollback go through Connection.execute, and neither
    # the connection's fetch* nor a prepared statement's calls go through another of these.
    connection = asyncpg.connection.Connection
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        _patch(connection, name, query(name))
    _patch(connection, "executemany", many)
    statement = asyncpg.prepared_stmt.PreparedStatement
    for name in ("fetch", "fetchrow", "fetchval"):
        _patch(statement, name, prepared(name))
    _patch(statement, "executemany", prepared_many)

    # aiosqlite: SQLAlchemy executes on a cursor and commits on the connection.
    def sqlite_execute(_self: Any, text: str, parameters: Any = None) -> Call:
        return Call("sql", text, ("execute", *(parameters or ())))

    def sqlite_many(_self: Any, text: str, parameters: Any) -> Call:
        return Call("sql-many", text, tuple(tuple(p) for p in parameters))

    def sqlite_control(text: str) -> Callable[..., Call]:
        return lambda _self: Call("sql", text, ("control",))

    _patch(aiosqlite.Cursor, "execute", sqlite_execute)
    _patch(aiosqlite.Cursor, "executemany", sqlite_many)
    _patch(aiosqlite.Connection, "commit", sqlite_control("COMMIT"))
    _patch(aiosqlite.Connection, "rollback", sqlite_control("ROLLBACK"))

    # redis-py: a command, or a pipeline sent as one round trip.
    def command(_self: Any, *args: Any, **_kw: Any) -> Call | None:
        if _is_rate_limit_lease(args):
            return None
        return Call("redis", str(args[0]), tuple(args[1:]))

    def pipeline(self: Any, *_args: Any, **_kw: Any) -> Call | None:
        stack = tuple(tuple(args) for args, _options in self.command_stack)
        if not stack:
            return None
        return Call("redis-pipeline", "MULTI" if self.is_transaction else "PIPELINE", stack)

    _patch(redis.asyncio.client.Redis, "execute_command", command)
    _patch(redis.asyncio.client.Pipeline, "execute", pipeline)


def _is_rate_limit_lease(args: tuple[Any, ...]) -> bool:
    """Whether a Redis command is the rate limiter taking a lease. A lease covers up to
    `SKILLTREE_RATE_LIMIT_LEASE_MAX` requests of a caller, so whether one request takes it
    depends on the requests before it and on the clock: recorded, it would make one capture
    differ from the next. Left out, the ceiling does a little less work than skilltree (one
    round trip in many requests), which makes it a slightly higher bar, never a lower one."""
    if str(args[0]).upper() not in ("EVALSHA", "EVAL") or len(args) < 4:
        return False
    key = args[3]
    text = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
    return "ratelimit:" in text


class CaptureMiddleware:
    """Records the requests that ask for it (see the module's docstring)."""

    def __init__(self, app: Any, directory: Path) -> None:
        self.app = app
        self.directory = directory
        install_recorders()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        name = None
        if scope["type"] == "http":
            name = dict(scope["headers"]).get(CAPTURE_HEADER)
        if name is None:
            await self.app(scope, receive, send)
            return
        record = Record()

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.split = len(calls)
                record.status = message["status"]
                record.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                record.body += message.get("body", b"")
            await send(message)

        with recording() as calls:
            await self.app(scope, receive, keep)
            await asyncio.sleep(SETTLE_SECONDS)
        record.calls = list(calls)
        target = self.directory / f"{name.decode()}.pickle"
        # Written after the response: renamed into place, so it is never read half-written.
        partial = target.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(record))
        partial.rename(target)


def read_record(directory: Path, name: str, *, wait_seconds: float = 30) -> Record:
    """The record of the request `name`, waiting for it: it is written once the response and
    the work after it are done, so the client may ask before it is there."""
    path = directory / f"{name}.pickle"
    deadline = time.monotonic() + wait_seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no record of the request {name} after {wait_seconds} s")
        time.sleep(0.01)
    record = pickle.loads(path.read_bytes())  # noqa: S301 (written by this run)
    assert isinstance(record, Record)
    return record


def create_app() -> Any:
    """skilltree as `skilltree serve` builds it, recording the requests that ask for it."""
    from skilltree.app import create_app_from_environment

    return CaptureMiddleware(create_app_from_environment(), Path(os.environ[CAPTURE_DIR]))
