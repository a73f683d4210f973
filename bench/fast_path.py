"""The cached public tree and /livez against the minimal FastAPI route and their same-work ceilings.

    .venv/bin/python -m bench.fast_path                 # 5 s per endpoint, 64 connections, 2 rounds
    .venv/bin/python -m bench.fast_path --profile prof  # and a py-spy profile of each tree run
    .venv/bin/python -m bench.fast_path --in-process    # the app called directly, no server
    .venv/bin/python -m bench.fast_path --in-process --database sqlite  # the embedded default
    .venv/bin/python -m bench.fast_path --in-process --parts  # and the 304's parts

The same-work ceiling is a minimal FastAPI app whose one route sends the very bytes skilltree
sends for `GET /v1/roadmaps/backend/tree` (160 kB of JSON, fetched from skilltree first) with
the same content type: what sending them costs this machine with no middleware, no limiter, no
access log. Each round measures the minimal route, the ceiling and skilltree's tree, its 304
and its brotli variant back to back, then the bare ASGI app (bench/baselines.py: the bytes
/livez sends, no framework), which is /livez's ceiling, and skilltree's /livez; the table gives
req/s, the worker's CPU per request
(user + system time over the requests answered, which a loaded machine bends less than req/s)
and the ratios. Same staging as `make bench` (bench/stage.py): production shape, PostgreSQL,
Redis, access log on, the limiter on with quotas too large to trip; with `--database sqlite`, a
throwaway SQLite file and no Redis (the embedded default: the cache and the limiter in memory).

`--in-process` measures skilltree's own share alone: the app, built and started in this process,
is called directly with ASGI messages (no server, no sockets, no HTTP parsing), 5,000 requests
a round for each of the tree, its 304, its brotli variant, /livez and the bare ASGI app, and
the process's CPU time per request is reported (best and median of the rounds). The access log
goes to `--log-to` (default /dev/null; `-` keeps stdout, to measure writing to a pipe, and
prints the results to stderr). With `--parts` it then measures the 304 again with the fast
path's rate limiter, its access log (the line and the RED metrics), or both switched off, the
four alternated in each round: what those two parts of the production shape cost a request
whose own work is a lookup and a send.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx
from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message

from bench.baselines import bare
from bench.me import measured
from bench.servers import serve
from bench.stage import (
    SKILLTREE_APP,
    prepare,
    redis_prefix,
    skilltree_env,
    throwaway_database,
    throwaway_sqlite,
)
from bench.usage import load_average
from bench.wrk import Load, require_wrk

if TYPE_CHECKING:
    from skilltree.platform.http.fast_path import FastPathMiddleware

BODY_FILE = "SKILLTREE_BENCH_BODY_FILE"
TREE = "/v1/roadmaps/backend/tree"
LIVEZ = "/livez"


def ceiling() -> FastAPI:
    """A minimal app sending the bytes in $SKILLTREE_BENCH_BODY_FILE (served with --factory)."""
    body = Path(os.environ[BODY_FILE]).read_bytes()
    app = FastAPI()

    @app.get("/")
    async def root() -> Response:
        return Response(body, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--profile",
        type=Path,
        help="a directory for py-spy profiles of skilltree's worker (raw format, one per endpoint)",
    )
    parser.add_argument("--in-process", action="store_true", help="the app called directly")
    parser.add_argument("--requests", type=int, default=5000, help="per round, --in-process")
    parser.add_argument("--log-to", default=os.devnull, help="the access log, --in-process")
    parser.add_argument(
        "--parts", action="store_true", help="--in-process: the 304 without limiter or log too"
    )
    parser.add_argument(
        "--database",
        choices=["postgresql", "sqlite"],
        default="postgresql",
        help="sqlite: a throwaway SQLite file and no Redis (the embedded default)",
    )
    args = parser.parse_args()
    if args.in_process:
        in_process(args.rounds, args.requests, args.log_to, args.database, parts=args.parts)
        return
    require_wrk()
    load = Load(args.duration, args.connections, 2, 30)
    with (
        staged(args.database) as env,
        tempfile.NamedTemporaryFile(suffix=".json") as body_file,
    ):
        prepare(env, builtin_roadmap=True)
        with serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as app:
            tree = httpx.get(app.base + TREE, headers={"accept-encoding": "identity"}, timeout=30)
            tree.raise_for_status()
            body_file.write(tree.content)
            body_file.flush()
            etag = tree.headers["etag"]
            with (
                serve("fastapi", "uvicorn", "bench.baselines:fastapi", {}) as minimal,
                serve(
                    "ceiling", "uvicorn", "bench.fast_path:ceiling", {BODY_FILE: body_file.name},
                    factory=True,
                ) as same_work,
                serve("bare", "uvicorn", "bench.baselines:bare", {}) as bare,
            ):  # fmt: skip
                print(f"tree: {len(tree.content)} bytes")
                print("round | endpoint | req/s | ms CPU | × minimal FastAPI | × ceiling")
                for number in range(1, args.rounds + 1):
                    base, base_cpu = measured("minimal", minimal, minimal.base + "/", load, {})
                    top, top_cpu = measured("ceiling", same_work, same_work.base + "/", load, {})
                    rows = [
                        ("minimal FastAPI", base, base_cpu, top),
                        ("same-work ceiling", top, top_cpu, top),
                    ]
                    for name, headers in (
                        ("tree", {}),
                        ("tree, 304", {"If-None-Match": etag}),
                        ("tree, br", {"Accept-Encoding": "br"}),
                    ):
                        result, cpu = measured(
                            name, app, app.base + TREE, load, headers, profile=args.profile
                        )
                        rows.append((name, result, cpu, top))
                    probe_top, probe_cpu = measured("bare", bare, bare.base + "/", load, {})
                    rows.append(("bare ASGI (/livez's ceiling)", probe_top, probe_cpu, probe_top))
                    live, live_cpu = measured(
                        "livez", app, app.base + LIVEZ, load, {}, profile=args.profile
                    )
                    rows.append(("livez", live, live_cpu, probe_top))
                    for name, result, cpu, ceiling_result in rows:
                        print(
                            f"{number} | {name} | {result.rps:.0f} | {cpu:.3f} | "
                            f"{result.rps / base.rps:.3f} | {result.rps / ceiling_result.rps:.3f}"
                            f" (failed: {result.bad})",
                            flush=True,
                        )
    print(f"load average: {load_average()}")


@contextmanager
def staged(database: str) -> Iterator[dict[str, str]]:
    """The environment of a skilltree on a throwaway database, without its data yet: PostgreSQL
    and Redis under a fresh prefix, or (`sqlite`) a SQLite file and no Redis."""
    if database == "sqlite":
        with throwaway_sqlite() as database_url:
            yield skilltree_env(database_url, None)
        return
    with throwaway_database() as database_url, redis_prefix() as prefix:
        yield skilltree_env(database_url, prefix)


def in_process(
    rounds: int, requests: int, log_to: str, database: str = "postgresql", *, parts: bool = False
) -> None:
    with staged(database) as env:
        prepare(env, builtin_roadmap=True)
        os.environ.update(env)
        results = sys.stdout if log_to != "-" else sys.stderr
        with contextlib.ExitStack() as access_log:
            if log_to != "-":
                log = access_log.enter_context(Path(log_to).open("w"))
                access_log.enter_context(contextlib.redirect_stdout(log))
            timings, answered = asyncio.run(_called(rounds, requests, parts=parts))
    # Whether the tree's requests were answered in front of the stack (decision 0055) or by it.
    print(f"tree requests answered by the fast path: {answered}", file=results)
    print("endpoint | µs CPU per request, best | median", file=results)
    for name, values in timings.items():
        best, median = min(values), statistics.median(values)
        print(f"{name} | {best:.1f} | {median:.1f}", file=results)
    # The ratio `make bench` reports (ceiling over skilltree), here of CPU per request.
    ceiling_cpu = statistics.median(timings["bare ASGI (/livez's ceiling)"])
    livez_cpu = statistics.median(timings["livez"])
    print(f"livez × its ceiling (median CPU): {ceiling_cpu / livez_cpu:.3f}", file=results)


async def _called(
    rounds: int, requests: int, *, parts: bool = False
) -> tuple[dict[str, list[float]], int]:
    """CPU per request by endpoint (and with `parts`, of the 304 without the limiter, the
    access log or both), and how many requests the fast path answered."""
    from skilltree.app import create_app_from_environment

    app = create_app_from_environment()
    async with app.router.lifespan_context(app):
        # The first request fills the cache; then the local copy is trusted (pushed invalidation).
        await _drive(app, 2, [])
        await asyncio.sleep(0.2)
        first = await _drive(app, 1, [(b"accept-encoding", b"identity")])
        cases: dict[str, tuple[ASGIApp, str, list[tuple[bytes, bytes]]]] = {
            "tree": (app, TREE, []),
            "tree, 304": (app, TREE, [(b"if-none-match", dict(first)[b"etag"])]),
            "tree, br": (app, TREE, [(b"accept-encoding", b"br")]),
            "livez": (app, LIVEZ, []),
            "bare ASGI (/livez's ceiling)": (cast(ASGIApp, bare), "/", []),
        }
        timings: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, (called, path, headers) in cases.items():
                await _drive(called, 200, headers, path)  # warm
                started = time.process_time()
                await _drive(called, requests, headers, path)
                timings[name].append(1e6 * (time.process_time() - started) / requests)
        if parts:
            timings |= await parts_of_a_304(app, cases["tree, 304"][2], rounds, requests)
        return timings, answered_by_fast_path(app)


async def parts_of_a_304(
    app: FastAPI,
    headers: list[tuple[bytes, bytes]],
    rounds: int,
    requests: int,
    path: str = TREE,
) -> dict[str, list[float]]:
    """CPU per 304 with the fast path's limiter and access log on, and off in turn."""
    layer = fast_path_of(app)
    assert layer is not None, "the app has no fast path"
    limiter, access_log = layer.limiter, layer.access_log
    variants = {
        "tree, 304, as served": (limiter, True),
        "tree, 304, no access log": (limiter, False),
        "tree, 304, no limiter": (None, True),
        "tree, 304, neither": (None, False),
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(rounds):
            for name, (layer.limiter, layer.access_log) in variants.items():
                await _drive(app, 200, headers, path)  # warm
                started = time.process_time()
                await _drive(app, requests, headers, path)
                timings[name].append(1e6 * (time.process_time() - started) / requests)
    finally:
        layer.limiter, layer.access_log = limiter, access_log
    return timings


def answered_by_fast_path(app: FastAPI) -> int:
    """The fast path's count of requests it answered (0 when the app has none)."""
    layer = fast_path_of(app)
    return 0 if layer is None else layer.answered


def fast_path_of(app: FastAPI) -> FastPathMiddleware | None:
    """The app's fast path: in front of the application (decision 0078), not in its stack."""
    from skilltree.platform.http.fast_path import FastPathMiddleware

    layer: object = getattr(app, "front_stack", None)
    while layer is not None and not isinstance(layer, FastPathMiddleware):
        layer = getattr(layer, "app", None)
    return layer if isinstance(layer, FastPathMiddleware) else None


async def _drive(
    app: ASGIApp, count: int, headers: list[tuple[bytes, bytes]], path: str = TREE
) -> list[tuple[bytes, bytes]]:
    """Send `count` requests for `path`; the last response's headers."""
    received: list[tuple[bytes, bytes]] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            received[:] = message["headers"]

    request_headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"bench"), *headers]
    for _ in range(count):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": list(request_headers),
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)
    return received


if __name__ == "__main__":
    main()
