"""The two web pages `make bench` measures, against the minimal FastAPI route and against their
same-work ceilings, in one run.

    .venv/bin/python -m bench.pages                    # 10 s, 16 connections, 3 rounds
    .venv/bin/python -m bench.pages --profile /tmp/prof   # py-spy profiles (raw), round 1
    .venv/bin/python -m bench.pages --in-process          # the app called directly, no server
    .venv/bin/python -m bench.pages --in-process --fresh  # and the compression memo off

`GET /roadmaps/backend` (the built-in roadmap's page, the learner's status on each of its
topics) and `GET /roadmaps/backend/topics/centralized-error-handling`, each with the benchmark
account's cookie, `Accept: text/html` and `Accept-Encoding: br`, as bench/endpoints.py
`page_endpoints` sends them. The account has 50 finished topics.

As `make bench` does (bench/run.py), each page is first captured from skilltree itself (its
statements, Redis calls and response) and the ceiling (bench/ceiling.py) replays them: the
same work with no framework, no ORM, no rendering. Each round measures the minimal route, then
each page and its ceiling back to back (the ceiling for half as long, as `make bench` does); the
table gives req/s, the ratios to the minimal route and to the ceiling of the same round, and the
worker's CPU per request (bench/me.py `measured`), which a loaded machine bends less than req/s.

`--in-process` measures skilltree's own share alone, as `bench.me --in-process` does: the app,
built and started in this process, is called directly with ASGI messages (no server, no
sockets, no HTTP parsing), `--requests` a round for each page, and the process's CPU time per
request is reported (best and median of the rounds). Each page is measured as `make bench`
sends it (`br`) and without compression (`identity`), which shows the compression's share.
The same learner's unchanged page sent again hits the compression memo, which a page another
learner is sent, or the same learner's after a change, misses: `--fresh` turns the memo off
(`SKILLTREE_HTTP_COMPRESSION_MEMO_BYTES=0`) so that every page is compressed as those are.
`--only TEXT` keeps the cases whose name contains TEXT, e.g. to profile one of them:

    py-spy record -f raw -o /tmp/roadmap.txt -- .venv/bin/python -m bench.pages --in-process \
        --rounds 1 --requests 1000 --only "backend (page, cookie) | br"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

from bench import ceiling
from bench.capture import CAPTURE_DIR, Record
from bench.endpoints import Endpoint, page_endpoints
from bench.me import measured
from bench.run import CAPTURE_APP, Stage
from bench.servers import Server, serve
from bench.stage import (
    SKILLTREE_APP,
    Session,
    prepare,
    redis_prefix,
    sign_in_with,
    skilltree_env,
    throwaway_database,
)
from bench.usage import load_average
from bench.wrk import Load, require_wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    # Few enough that the worker answers every request: the admission queue sheds nothing.
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles (raw) here")
    parser.add_argument("--in-process", action="store_true", help="the app called directly")
    parser.add_argument("--requests", type=int, default=500, help="per round, --in-process")
    parser.add_argument(
        "--fresh", action="store_true", help="--in-process: no compression memo hits"
    )
    parser.add_argument(
        "--only", default="", help="--in-process: only the cases whose name contains this"
    )
    args = parser.parse_args()
    if args.in_process:
        in_process(args.rounds, args.requests, fresh=args.fresh, only=args.only)
        return
    require_wrk()
    load = Load(args.duration, args.connections, 2, 30)
    print(f"load average at the start: {load_average()}")
    with (
        throwaway_database() as database_url,
        redis_prefix() as prefix,
        tempfile.TemporaryDirectory(prefix="skilltree-bench-pages-") as directory,
    ):
        env = skilltree_env(database_url, prefix)
        prepare(env)
        stage = captured(database_url, env, Path(directory))
        with (
            serve("fastapi", "uvicorn", "bench.baselines:fastapi", {}) as minimal,
            serve("ceiling", "uvicorn", "bench.ceiling:app", stage.ceiling_env()) as top,
            serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as app,
        ):
            for number in range(1, args.rounds + 1):
                profile = args.profile if number == 1 else None
                one_round(number, minimal, top, app, stage, load, profile)
    print(f"load average at the end: {load_average()}")


def captured(database_url: str, env: dict[str, str], directory: Path) -> Stage:
    """The benchmark account signed in, and each page's calls and response captured."""
    capturing = env | {CAPTURE_DIR: str(directory)}
    with serve("skilltree (capture)", "uvicorn", CAPTURE_APP, capturing, factory=True) as app:
        session, endpoints, records = asyncio.run(sign_in_and_capture(app.base, directory))
    spec_path = directory / "spec.pickle"
    ceiling.write_spec(ceiling.build_spec(records), spec_path)
    counts = {
        e.name: (
            sum(r.statements for r in records[e.key][-1]) / len(records[e.key][-1]),
            sum(r.redis_calls for r in records[e.key][-1]) / len(records[e.key][-1]),
        )
        for e in endpoints
    }
    return Stage(database_url, env, session, endpoints, spec_path, counts)


async def sign_in_and_capture(
    base: str, directory: Path
) -> tuple[Session, list[Endpoint], dict[str, list[list[Record]]]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        session = await sign_in_with(client, finished_topics=50)
        endpoints = page_endpoints(session)
        return session, endpoints, await ceiling.capture(client, endpoints, directory)


def one_round(
    number: int,
    minimal: Server,
    top: Server,
    app: Server,
    stage: Stage,
    load: Load,
    profile: Path | None,
) -> None:
    if number == 1:
        print("round | endpoint | req/s | × minimal FastAPI | × ceiling | worker ms CPU per request"
              " | statements, Redis calls")  # fmt: skip
    base, base_cpu = measured("minimal", minimal, f"{minimal.base}/", load, {})
    print(f"{number} | minimal FastAPI | {base.rps:.0f} | 1 | - | {base_cpu:.3f} | -", flush=True)
    # Half as long, as `make bench` measures a ceiling: its rate settles as fast.
    ceiling_load = replace(load, seconds=max(1, load.seconds // 2))
    for endpoint in stage.endpoints:
        result, cpu = measured(endpoint.name, app, f"{app.base}{endpoint.path}", load,
                               endpoint.headers, "", profile)  # fmt: skip
        top_result, top_cpu = measured(f"ceiling of {endpoint.name}", top,
                                       f"{top.base}/{endpoint.key}", ceiling_load,
                                       endpoint.headers)  # fmt: skip
        statements, redis_calls = stage.counts[endpoint.name]
        print(
            f"{number} | {endpoint.name} | {result.rps:.0f} | {result.rps / base.rps:.4f}"
            f" | {result.rps / max(top_result.rps, 1e-9):.3f} | {cpu:.3f} (failed: {result.bad})"
            f" | {statements:g}, {redis_calls:g}",
            flush=True,
        )
        print(
            f"{number} | its ceiling | {top_result.rps:.0f} | {top_result.rps / base.rps:.4f}"
            f" | 1 | {top_cpu:.3f} (failed: {top_result.bad}) | -",
            flush=True,
        )


def in_process(rounds: int, requests: int, *, fresh: bool, only: str = "") -> None:
    """Each page called `requests` times a round in this process; CPU µs per request."""
    print(f"load average at the start: {load_average()}")
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        if fresh:
            env = env | {"SKILLTREE_HTTP_COMPRESSION_MEMO_BYTES": "0"}
        prepare(env)
        os.environ.update(env)
        with Path(os.devnull).open("w") as log, contextlib.redirect_stdout(log):  # the access log
            timings, sizes = asyncio.run(_called(rounds, requests, only))
    print("page | coding | bytes sent | µs CPU per request, best | median")
    for name, values in timings.items():
        print(f"{name} | {sizes[name]} | {min(values):.1f} | {statistics.median(values):.1f}")
    print(f"load average at the end: {load_average()}")


async def _called(
    rounds: int, requests: int, only: str
) -> tuple[dict[str, list[float]], dict[str, int]]:
    from bench.in_process import call  # imports the app: only for --in-process
    from skilltree.app import create_app_from_environment

    app = create_app_from_environment()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            session = await sign_in_with(client, finished_topics=50)
        cases = []
        for endpoint in page_endpoints(session):
            for coding in ("br", "identity"):
                headers = endpoint.headers | {"Accept-Encoding": coding}
                raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
                name = f"{endpoint.name} | {coding}"
                if only in name:
                    cases.append((name, endpoint.path, raw))
        timings: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        sizes = {name: len(await call(app, "GET", path, raw)) for name, path, raw in cases}
        for _ in range(rounds):
            for name, path, raw in cases:
                for _ in range(50):  # warm
                    await call(app, "GET", path, raw)
                started = time.process_time()
                for _ in range(requests):
                    await call(app, "GET", path, raw)
                timings[name].append(1e6 * (time.process_time() - started) / requests)
        return timings, sizes


if __name__ == "__main__":
    main()
