"""`python -m bench.lean`: the progress write and the due list against the minimal FastAPI route.

    .venv/bin/python -m bench.lean                       # 5 s each, 32 connections, 3 rounds
    .venv/bin/python -m bench.lean --profile /tmp/prof   # and a py-spy profile of each endpoint

Each round measures the baseline, then `PUT /v1/me/progress/backend/{topic}` (alternating
statuses, so every request changes something) and `GET /v1/me/reviews/due?limit=20`, back to
back. The table gives req/s, the ratio to the baseline of the same round, and the worker's CPU
per request (user + system time over the requests answered), which a loaded machine bends far
less than req/s. Same staging as `make bench` (bench/stage.py): production shape, PostgreSQL,
Redis, the benchmark account with 50 finished topics.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bench.endpoints import Endpoint, status
from bench.me import rounds_against_minimal
from bench.servers import serve
from bench.stage import (
    SKILLTREE_APP,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.usage import load_average
from bench.wrk import Load, require_wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles (raw) here")
    args = parser.parse_args()
    require_wrk()
    load = Load(args.duration, args.connections, 2, 30)
    print(f"load average at the start: {load_average()}")
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        with (
            serve("fastapi", "uvicorn", "bench.baselines:fastapi", {}) as minimal,
            serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as app,
        ):
            session = asyncio.run(sign_in(app.base))
            bearer = {"Authorization": f"Bearer {session.bearer}"}
            write_url = f"{app.base}/v1/me/progress/backend/{session.topic}"
            due_url = f"{app.base}/v1/me/reviews/due?limit=20"
            write_headers = bearer | {"Content-Type": "application/json"}
            toggle = Endpoint(
                "write",
                "PUT progress",
                write_url,
                method="PUT",
                bodies=(status("done"), status("in_progress")),
            ).wrk_script()
            requests = [
                ("PUT progress", write_url, write_headers, toggle),
                ("GET due list", due_url, bearer, ""),
            ]
            rounds_against_minimal(
                minimal, app, load, requests, rounds=args.rounds, profile=args.profile
            )
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
