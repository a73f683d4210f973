"""The cached public tree against the minimal FastAPI route and its same-work ceiling, in one run.

    .venv/bin/python -m bench.fast_path                 # 5 s per endpoint, 64 connections, 2 rounds

The same-work ceiling is a minimal FastAPI app whose one route sends the very bytes skilltree
sends for `GET /v1/roadmaps/backend/tree` (160 kB of JSON, fetched from skilltree first) with
the same content type: what sending them costs this machine with no middleware, no limiter, no
access log. Each round measures the minimal route, the ceiling and skilltree's tree, its 304
and its brotli variant back to back; the table gives req/s, the worker's CPU per request
(user + system time over the requests answered, which a loaded machine bends less than req/s)
and the ratios. Same staging as `make bench` (bench/stage.py): production shape, PostgreSQL,
Redis, access log on, the limiter on with quotas too large to trip.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from fastapi import FastAPI, Response

from bench.me import measured
from bench.servers import serve
from bench.stage import SKILLTREE_APP, prepare, redis_prefix, skilltree_env, throwaway_database
from bench.wrk import Load

BODY_FILE = "SKILLTREE_BENCH_BODY_FILE"
TREE = "/v1/roadmaps/backend/tree"


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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk`")
    load = Load(args.duration, args.connections, 2, 30)
    with (
        throwaway_database() as database_url,
        redis_prefix() as prefix,
        tempfile.NamedTemporaryFile(suffix=".json") as body_file,
    ):
        env = skilltree_env(database_url, prefix)
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
            ):  # fmt: skip
                print(f"tree: {len(tree.content)} bytes")
                print("round | endpoint | req/s | ms CPU | × minimal FastAPI | × ceiling")
                for number in range(1, args.rounds + 1):
                    base, base_cpu = measured("minimal", minimal, minimal.base + "/", load, {})
                    top, top_cpu = measured("ceiling", same_work, same_work.base + "/", load, {})
                    rows = [
                        ("minimal FastAPI", base, base_cpu),
                        ("same-work ceiling", top, top_cpu),
                    ]
                    for name, headers in (
                        ("tree", {}),
                        ("tree, 304", {"If-None-Match": etag}),
                        ("tree, br", {"Accept-Encoding": "br"}),
                    ):
                        result, cpu = measured(name, app, app.base + TREE, load, headers)
                        rows.append((name, result, cpu))
                    for name, result, cpu in rows:
                        print(
                            f"{number} | {name} | {result.rps:.0f} | {cpu:.3f} | "
                            f"{result.rps / base.rps:.3f} | {result.rps / top.rps:.3f}"
                            f" (failed: {result.bad})",
                            flush=True,
                        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
