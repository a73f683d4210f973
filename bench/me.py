"""`GET /v1/me` with a bearer token against the minimal FastAPI route, in one run.

    .venv/bin/python -m bench.me                     # 10 s per endpoint, 32 connections, 3 rounds

The cost of finding who is asking, and nothing else: the route returns the caller. Each round
measures the baseline and skilltree back to back; the table gives req/s, the ratio to the
baseline of the same round, and the worker's CPU per request (user + system time the worker
used during the round, over the requests it answered), which a loaded machine bends less than
req/s. Same staging as `make bench` (bench/stage.py): production shape, PostgreSQL, Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.servers import BIN, Server, cpu_seconds, serve, wait_until_idle
from bench.stage import (
    SKILLTREE_APP,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.wrk import Load, Result, wrk


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk`")
    load = Load(args.duration, args.connections, 2, 30)
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        with (
            serve("fastapi", "uvicorn", "bench.baselines:fastapi", {}) as minimal,
            serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as app,
        ):
            session = asyncio.run(sign_in_without_progress(app.base))
            bearer = {"Authorization": f"Bearer {session}"}
            print("round | minimal FastAPI req/s | ms CPU | skilltree /v1/me req/s | ms CPU | ×")
            for round_number in range(1, args.rounds + 1):
                base, base_cpu = measured("minimal", minimal, f"{minimal.base}/", load, {})
                me, me_cpu = measured("GET /v1/me", app, f"{app.base}/v1/me", load, bearer)
                print(
                    f"{round_number} | {base.rps:.0f} | {base_cpu:.3f} | {me.rps:.0f}"
                    f" | {me_cpu:.3f} | {me.rps / base.rps:.3f} (failed: {me.bad})",
                    flush=True,
                )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def sign_in_without_progress(base: str) -> str:
    """The benchmark account's access token (no progress needed for /v1/me)."""
    session = await sign_in(base, finished_topics=0)
    return session.bearer


if __name__ == "__main__":
    main()
