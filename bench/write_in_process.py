"""`python -m bench.write_in_process`: the progress write's own CPU, without a server.

    .venv/bin/python -m bench.write_in_process              # 5 rounds of 300 writes

skilltree is built and started in this process (production shape, PostgreSQL, Redis, the
benchmark account with 50 finished topics: bench/stage.py) and called directly with ASGI
messages, one request at a time: `PUT /v1/me/progress/backend/{topic}` by bearer token,
alternating `done` and `in_progress` so that each write changes something, and the minimal
FastAPI route (bench/baselines.py) the same number of times. The process's CPU time per
request (best and median of the rounds) is skilltree's share alone: no sockets, no HTTP
parsing, no other writer waiting on the learner's lock, and far less bent by other work on the
machine than req/s under wrk. PostgreSQL's and Redis's own CPU are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
from starlette.types import ASGIApp

from bench.baselines import fastapi as minimal_fastapi
from bench.in_process import call
from bench.stage import prepare, redis_prefix, sign_in_with, skilltree_env, throwaway_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="writes per round")
    args = parser.parse_args()
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        os.environ.update(env)
        with Path(os.devnull).open("w") as log:
            sys.stdout = log  # the access log
            try:
                timings = asyncio.run(_measured(args.rounds, args.requests))
            finally:
                sys.stdout = sys.__stdout__
    print("request | µs CPU per request, best | median")
    for name, values in timings.items():
        print(f"{name} | {min(values):.0f} | {statistics.median(values):.0f}")
    ratio = statistics.median(timings["minimal FastAPI"]) / statistics.median(timings["write"])
    print(f"write × minimal FastAPI (median CPU per request): {ratio:.4f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def _measured(rounds: int, requests: int) -> dict[str, list[float]]:
    from skilltree.app import create_app_from_environment

    app = create_app_from_environment()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            session = await sign_in_with(client)
        write = [(b"authorization", f"Bearer {session.bearer}".encode())]
        path = f"/v1/me/progress/backend/{session.topic}"
        timings: dict[str, list[float]] = {"write": [], "minimal FastAPI": []}
        for _ in range(rounds):
            await _drive(app, "PUT", path, write, 50)  # warm
            started = time.process_time()
            await _drive(app, "PUT", path, write, requests)
            timings["write"].append(1e6 * (time.process_time() - started) / requests)
            baseline = minimal_fastapi
            await _drive(baseline, "GET", "/", [], 200)
            started = time.process_time()
            await _drive(baseline, "GET", "/", [], requests)
            timings["minimal FastAPI"].append(1e6 * (time.process_time() - started) / requests)
        return timings


async def _drive(
    app: ASGIApp, method: str, path: str, headers: list[tuple[bytes, bytes]], count: int
) -> None:
    """`count` requests, one at a time; a write alternates its two statuses."""
    statuses = (b'{"status": "done"}', b'{"status": "in_progress"}')
    for index in range(count):
        body = statuses[index % 2] if method == "PUT" else b""
        await call(app, method, path, headers, body)


if __name__ == "__main__":
    main()
