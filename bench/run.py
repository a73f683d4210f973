"""`make bench`: skilltree in its production shape, measured against two baselines in one run.

On loopback only. The script
1. creates a throwaway PostgreSQL database, migrates it, loads the built-in roadmap, creates a
   user and gives them some progress (so there are review cards);
2. starts three servers the same way (one worker, uvloop; under uvicorn with httptools, under
   granian in ASGI mode, or each in turn with `--server both`): the bare ASGI baseline, the
   minimal FastAPI baseline, and skilltree on PostgreSQL + Redis with its access log on
   (written to /dev/null) and its rate limiter on with quotas too large to trip;
3. drives each endpoint with wrk at 64 connections and prints one table per server: req/s, p50,
   p99, non-2xx/3xx responses, and the ratio to each baseline; then each server's RSS (for
   skilltree after the reads and writes, right after the sign-ins, and once those are done). With
   `--server both` a last table sets the two servers side by side.

Figures are only comparable within one run: the baselines are measured beside skilltree so the
ratios cancel out what the machine was doing. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from dataclasses import dataclass

from bench.servers import SERVER_KINDS, Server, ServerKind, serve, wait_until_idle
from bench.stage import (
    EMAIL,
    PASSWORD,
    SKILLTREE_APP,
    Session,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.wrk import Load, Result, wrk


@dataclass
class Run:
    kind: ServerKind
    results: list[Result]
    rss_mb: dict[str, float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--server", choices=[*SERVER_KINDS, "both"], default="uvicorn")
    parser.add_argument(
        "--timeout", type=int, default=30, help="seconds before wrk gives a request up"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does it when root)")
    # A timeout well beyond any answer: a slow answer is then measured in p99 rather than
    # counted as a failure and left out of the latencies.
    load = Load(args.duration, args.connections, args.threads, args.timeout)
    kinds: tuple[ServerKind, ...] = SERVER_KINDS if args.server == "both" else (args.server,)

    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        runs = [measure_under(kind, env, load) for kind in kinds]
    for run in runs:
        print(f"\n## {run.kind}\n")
        print_table(run.results)
        print()
        for name, rss in run.rss_mb.items():
            print(f"RSS of the worker, {name} ({run.kind}): {rss:.0f} MiB")
    if len(runs) == 2:
        print(f"\n## {runs[1].kind} against {runs[0].kind}\n")
        print_comparison(runs[0], runs[1])


def measure_under(kind: ServerKind, env: dict[str, str], load: Load) -> Run:
    """Start the baselines and skilltree under one server and measure every endpoint."""
    with (
        serve("bare", kind, "bench.baselines:bare", {}) as bare,
        serve("fastapi", kind, "bench.baselines:fastapi", {}) as minimal,
        serve("skilltree", kind, SKILLTREE_APP, env, factory=True) as app,
    ):
        session = asyncio.run(sign_in(app.base))
        results, memory = measure(bare, minimal, app, session, load)
        return Run(kind, results, {s.name: s.rss_mb() for s in (bare, minimal)} | memory)


# --- the endpoints -----------------------------------------------------------------------------


def measure(
    bare: Server, minimal: Server, app: Server, s: Session, load: Load
) -> tuple[list[Result], dict[str, float]]:
    """Every endpoint's result, and skilltree's memory after the reads and writes and after the
    sign-ins (each argon2id hash holds 64 MiB while it runs)."""
    bearer = {"Authorization": f"Bearer {s.bearer}"}
    baselines = [
        wrk("baseline: bare ASGI", f"{bare.base}/", load),
        wrk("baseline: minimal FastAPI", f"{minimal.base}/", load),
    ]
    tree = f"{app.base}/v1/roadmaps/backend/tree"
    progress = f"{app.base}/v1/me/progress/backend"
    results = [
        wrk("GET /livez", f"{app.base}/livez", load),
        wrk("GET tree (backend)", tree, load),
        wrk("GET tree, If-None-Match (304)", tree, load, {"If-None-Match": s.etag}),
        # What browsers get: the cached tree, brotli-compressed for this response.
        wrk("GET tree, Accept-Encoding: br", tree, load, {"Accept-Encoding": "br"}),
        wrk("GET /v1/me/progress/backend (cookie)", progress, load, {"Cookie": s.cookie}),
        wrk("GET /v1/me/progress/backend (bearer)", progress, load, bearer),
        wrk(
            "PUT /v1/me/progress/backend/{topic}",
            f"{progress}/{s.topic}",
            load,
            bearer | {"Content-Type": "application/json"},
            TOGGLE_STATUS,
        ),
        wrk("GET /v1/me/reviews/due", f"{app.base}/v1/me/reviews/due", load, bearer),
    ]
    memory = {"skilltree, after the reads and writes": app.rss_mb()}
    # The web app: the roadmap page a learner opens (Jinja2 loads with the first page), then
    # a topic page (Pygments loads with the first source shown). The memory after them, less
    # the figure above, is what the web app costs a worker.
    page = {"Cookie": s.cookie, "Accept": "text/html", "Accept-Encoding": "br"}
    results.append(
        wrk("GET /roadmaps/backend (page, cookie)", f"{app.base}/roadmaps/backend", load, page)
    )
    topic_page = f"{app.base}/roadmaps/backend/topics/centralized-error-handling"
    results.append(wrk("GET /roadmaps/backend/topics/{topic} (page)", topic_page, load, page))
    memory["skilltree, after the web pages"] = app.rss_mb()
    login = wrk(
        "POST /v1/auth/login (argon2-bound)",
        f"{app.base}/v1/auth/login",
        load,
        {"Content-Type": "application/json"},
        LOGIN,
    )
    memory["skilltree, right after the sign-ins"] = app.rss_mb()
    # Sign-ins wrk stopped waiting for are still being hashed: memory once they are done.
    wait_until_idle(app.worker_pid())
    memory["skilltree, after the sign-ins, once idle"] = app.rss_mb()
    for result in [*results, login]:
        result.ratios = {
            "bare": result.rps / baselines[0].rps,
            "fastapi": result.rps / baselines[1].rps,
        }
    return [*baselines, *results, login], memory


# wrk scripts: a write that alternates between two statuses (so each request changes something),
# and a sign-in with the benchmark account.
TOGGLE_STATUS = """
local statuses = {"done", "in_progress"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", nil, nil, '{"status":"' .. statuses[n % 2 + 1] .. '"}')
end
"""
LOGIN = f"""
wrk.method = "POST"
wrk.body = '{{"email": "{EMAIL}", "password": "{PASSWORD}"}}'
"""


ROW = "{:<42} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}"


def print_table(results: list[Result]) -> None:
    print(ROW.format("endpoint", "req/s", "p50 ms", "p99 ms", "failed", "x bare", "x fastapi"))
    for r in results:
        bare = f"{r.ratios['bare']:.3f}" if r.ratios else "-"
        minimal = f"{r.ratios['fastapi']:.3f}" if r.ratios else "-"
        figures = (f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", r.bad, bare, minimal)
        print(ROW.format(r.name, *figures))


COMPARISON_ROW = "{:<42} {:>10} {:>10} {:>9} {:>11} {:>11}"


def print_comparison(first: Run, second: Run) -> None:
    """req/s under each server, their quotient, and each one's ratio to its own FastAPI
    baseline: the quotient says which server is faster, the ratios whether the machine moved
    between the two runs."""
    a, b = first.kind, second.kind
    print(COMPARISON_ROW.format("endpoint", f"{a} r/s", f"{b} r/s", f"{b}/{a}",
                                f"{a} x fapi", f"{b} x fapi"))  # fmt: skip
    for x, y in zip(first.results, second.results, strict=True):
        x_fastapi = f"{x.ratios['fastapi']:.3f}" if x.ratios else "-"
        y_fastapi = f"{y.ratios['fastapi']:.3f}" if y.ratios else "-"
        figures = (f"{x.rps:.0f}", f"{y.rps:.0f}", f"{y.rps / x.rps:.2f}", x_fastapi, y_fastapi)
        print(COMPARISON_ROW.format(x.name, *figures))


if __name__ == "__main__":
    main()
