"""Authenticated reads against the minimal FastAPI route, in one run: `GET /v1/me` with a
bearer token, and with `--reads` the learner's progress (by cookie and by token) and the due
list.

    .venv/bin/python -m bench.me                     # /v1/me: 10 s, 32 connections, 3 rounds
    .venv/bin/python -m bench.me --reads             # and the progress reads and the due list
    .venv/bin/python -m bench.me --reads --profile /tmp/prof   # py-spy profiles (raw), round 1
    .venv/bin/python -m bench.me --reads --only "due list"     # one endpoint, by name
    .venv/bin/python -m bench.me --reads --in-process  # skilltree's own CPU, no server

`GET /v1/me` is the cost of finding who is asking, and nothing else: the route returns the
caller. Each round measures the baseline and skilltree's endpoints back to back; the table gives
req/s, the ratio to the baseline of the same round, and the worker's CPU per request (user +
system time the worker used during the round, over the requests it answered), which a loaded
machine bends less than req/s. Same staging as `make bench` (bench/stage.py): production shape,
PostgreSQL, Redis; with `--reads` the benchmark account has 50 finished topics.

`--in-process` measures skilltree's own share alone, as `bench.fast_path --in-process` does:
the app, built and started in this process, is called directly with ASGI messages (no server,
no sockets, no HTTP parsing), `--requests` requests a round one after another, and the process's
CPU time per request is reported (best and median of the rounds). PostgreSQL and Redis are the
same as served; their own CPU is not counted. The access log goes to /dev/null. Under
`py-spy record -- .venv/bin/python -m bench.me --reads --in-process` it profiles that share.

It also prints resident memory (VmRSS): of a fresh process with the same settings once it has
imported the app and once it has built it, and of the worker once it has signed the benchmark
account in and after the rounds (docs/performance.md, "What a worker loads").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.servers import BIN, ROOT, Server, cpu_seconds, serve, wait_until_idle
from bench.stage import (
    SKILLTREE_APP,
    Session,
    prepare,
    redis_prefix,
    sign_in,
    sign_in_with,
    skilltree_env,
    throwaway_database,
)
from bench.usage import load_average
from bench.wrk import Load, Result, require_wrk, wrk


def measured(
    name: str,
    server: Server,
    url: str,
    load: Load,
    headers: dict[str, str],
    script: str = "",
    profile: Path | None = None,
) -> tuple[Result, float]:
    """The wrk figures, and the worker's CPU milliseconds per answered request."""
    pid = server.worker_pid()
    # Requests wrk stopped waiting for are still being served: they would count against the
    # next endpoint's CPU time.
    wait_until_idle(pid)
    spy = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        output = profile / f"{name.replace(' ', '_').replace('/', '_')}.txt"
        spy_command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "250"]
        spy_command += ["--duration", str(max(load.seconds - 1, 1)), "--format", "raw"]
        spy = subprocess.Popen([*spy_command, "-o", str(output)], stdout=subprocess.DEVNULL)
    before = cpu_seconds(pid)
    result = wrk(name, url, load, headers, script)
    used = cpu_seconds(pid) - before
    if spy is not None:
        spy.wait()
    return result, 1000 * used / max(result.rps * load.seconds, 1)


# A measured request: (name, URL, headers, wrk script).
Request = tuple[str, str, dict[str, str], str]


def rounds_against_minimal(
    minimal: Server,
    app: Server,
    load: Load,
    requests: list[Request],
    *,
    rounds: int,
    profile: Path | None,
) -> None:
    """Each round the minimal FastAPI route, then each request back to back, a table row each;
    py-spy profiles (with `profile`) of the first round."""
    print("round | endpoint | req/s | × minimal FastAPI | worker ms CPU per request")
    for number in range(1, rounds + 1):
        base, base_cpu = measured("minimal", minimal, f"{minimal.base}/", load, {})
        print(f"{number} | minimal FastAPI | {base.rps:.0f} | 1 | {base_cpu:.3f}")
        first_round_profile = profile if number == 1 else None
        for name, url, headers, script in requests:
            result, cpu = measured(name, app, url, load, headers, script, first_round_profile)
            print(
                f"{number} | {name} | {result.rps:.0f} | {result.rps / base.rps:.4f}"
                f" | {cpu:.3f} (failed: {result.bad})",
                flush=True,
            )


def endpoints(base: str, session: Session, reads: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(name, URL, headers) of each measured request."""
    bearer = {"Authorization": f"Bearer {session.bearer}"}
    measured_ones = [("GET /v1/me", f"{base}/v1/me", bearer)]
    if reads:
        progress = f"{base}/v1/me/progress/backend"
        measured_ones += [
            ("GET progress (cookie)", progress, {"Cookie": session.cookie}),
            ("GET progress (bearer)", progress, bearer),
            ("GET due list", f"{base}/v1/me/reviews/due?limit=20", bearer),
        ]
    return measured_ones


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--reads", action="store_true", help="also the progress reads and the due list"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy profiles (raw) here")
    parser.add_argument("--in-process", action="store_true", help="the app called directly")
    parser.add_argument("--requests", type=int, default=2000, help="per round, --in-process")
    parser.add_argument(
        "--only",
        default="",
        help="measure only the endpoints whose name contains this, e.g. 'due list'",
    )
    args = parser.parse_args()
    if args.in_process:
        in_process(args.reads, args.rounds, args.requests, args.only)
        return
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
            session = asyncio.run(sign_in(app.base, finished_topics=50 if args.reads else 0))
            signed_in_rss = app.rss_mb()
            chosen = [
                (name, url, headers, "")
                for name, url, headers in endpoints(app.base, session, args.reads)
                if args.only in name
            ]
            if not chosen:
                sys.exit(f"no measured endpoint's name contains {args.only!r}")
            rounds_against_minimal(
                minimal, app, load, chosen, rounds=args.rounds, profile=args.profile
            )
            wait_until_idle(app.worker_pid())
            served_rss = app.rss_mb()
        imported_rss, built_rss = startup_rss(env)
    print(
        f"RSS: {imported_rss:.1f} MiB once the app is imported, {built_rss:.1f} MiB once it is"
        f" built (a fresh process); the worker {signed_in_rss:.1f} MiB after signing in,"
        f" {served_rss:.1f} MiB after the rounds"
    )
    print(f"load average at the end: {load_average()}")


def in_process(reads: bool, rounds: int, requests: int, only: str = "") -> None:
    """Each endpoint called `requests` times a round in this process; CPU µs per request."""
    print(f"load average at the start: {load_average()}")
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        os.environ.update(env)
        with Path(os.devnull).open("w") as log, contextlib.redirect_stdout(log):  # the access log
            timings = asyncio.run(_called(reads, rounds, requests, only))
    print("endpoint | µs CPU per request, best | median")
    for name, values in timings.items():
        print(f"{name} | {min(values):.1f} | {statistics.median(values):.1f}")
    print(f"load average at the end: {load_average()}")


async def _called(reads: bool, rounds: int, requests: int, only: str) -> dict[str, list[float]]:
    import httpx

    from skilltree.app import create_app_from_environment

    app = create_app_from_environment()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            session = await sign_in_with(client, finished_topics=50 if reads else 0)
        cases = [
            (name, url.removeprefix("http://bench"), _raw(headers))
            for name, url, headers in endpoints("http://bench", session, reads)
            if only in name
        ]
        timings: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(rounds):
            for name, target, headers in cases:
                await _drive(app, 50, target, headers)  # warm
                started = time.process_time()
                await _drive(app, requests, target, headers)
                timings[name].append(1e6 * (time.process_time() - started) / requests)
        return timings


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


async def _drive(app: Any, count: int, target: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Send `count` GET requests for `target` (a path and query), each answered 200."""
    from bench.in_process import call  # imports the app: only for --in-process

    for _ in range(count):
        await call(app, "GET", target, headers)


# A fresh interpreter as a worker starts: its VmRSS once the app's modules are imported, and
# once `create_app_from_environment` has built the app (routes, schemas, middleware).
STARTUP_RSS = """
import re
def rss():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmRSS:\\s+(\\d+) kB", status).group(1)) / 1024
from skilltree.app import create_app_from_environment
imported = rss()
create_app_from_environment()
print(imported, rss())
"""


def startup_rss(env: dict[str, str]) -> tuple[float, float]:
    """MiB resident after importing the app and after building it, in a fresh process."""
    done = subprocess.run(
        [str(BIN / "python"), "-c", STARTUP_RSS],
        cwd=ROOT,
        env=os.environ | env | {"SKILLTREE_LOG_ACCESS_LOG": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    imported, built = done.stdout.split()[-2:]
    return float(imported), float(built)


if __name__ == "__main__":
    main()
