"""`python -m bench.scale`: does latency grow with the data?

Two questions, each answered by measuring one endpoint at several data sizes in one run:

1. The tree: `GET /v1/roadmaps/{slug}/tree` for roadmaps of 100, 1,000 and 10,000 topics, from
   a server with the cache off (built from the database each time) and one with it on.
2. Personal reads among other people's data: `GET /v1/me/progress/backend/summary` (cache
   off, so the database answers) and `GET /v1/me/reviews/due` for the benchmark account, whose
   own progress stays the same (50 finished topics), while the progress of 10,000 other
   learners grows from 1,000 rows to 1,000,000 (with their events and review cards). The goal
   is that these stay within ±25 %.

Each block also measures the minimal FastAPI baseline, so a change in the machine's load between
sizes shows as a change in the baseline rather than passing for a change in skilltree; the
verdict on the ±25 % goal takes it out (`normalised_growth`). Every point is measured three times
(`--repeat`) and the run with the median p50 kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench import generate
from bench.servers import SERVER_KINDS, Server, serve
from bench.stage import (
    SKILLTREE_APP,
    asyncpg_dsn,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.wrk import Load, Result, require_wrk, wrk

TREE_SIZES = (100, 1_000, 10_000)
PROGRESS_SIZES = (1_000, 1_000_000)
LEARNERS = 10_000
TOLERANCE = 0.25  # the goal for personal reads: within ±25 % from the smallest size


@dataclass
class Measurement:
    endpoint: str
    size: int
    result: Result
    baseline: Result  # the minimal FastAPI app, measured just before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per endpoint and size")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server", choices=SERVER_KINDS, default="uvicorn")
    parser.add_argument("--tree-sizes", type=parse_sizes, default=TREE_SIZES)
    parser.add_argument("--progress-sizes", type=parse_sizes, default=PROGRESS_SIZES)
    parser.add_argument("--learners", type=int, default=LEARNERS)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per point; the one with the median p50 counts"
    )
    args = parser.parse_args()
    require_wrk()
    # Few connections and a long timeout: the question is time per request at each size, and
    # building a 10,000-topic tree takes seconds; wrk must wait for it rather than give up.
    load = Load(args.seconds, args.connections, threads=2, timeout_seconds=120)
    measure = Repeated(args.repeat)

    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        dsn = asyncpg_dsn(database_url)
        step(f"generating roadmaps of {', '.join(map(str, args.tree_sizes))} topics")
        asyncio.run(_generate_roadmaps(dsn, args.tree_sizes))
        uncached_env = env | {"SKILLTREE_CACHE_ENABLED": "false"}
        with (
            serve("fastapi", args.server, "bench.baselines:fastapi", {}) as baseline,
            serve("skilltree", args.server, SKILLTREE_APP, env, factory=True) as cached,
            serve("skilltree", args.server, SKILLTREE_APP, uncached_env, factory=True) as app,
        ):
            session = asyncio.run(sign_in(app.base))
            trees = measure_trees(measure, baseline, app, cached, args.tree_sizes, load)
            bearer = {"Authorization": f"Bearer {session.bearer}"}
            personal = measure_personal(
                measure, baseline, app, bearer, dsn, args.progress_sizes, args.learners, load
            )
    print(f"\n## Tree by roadmap size ({args.server}, {load.connections} connections)\n")
    print_table(trees)
    print(f"\n## Personal reads by other learners' progress rows ({args.server})\n")
    print_table(personal)
    print_verdict(personal)


def parse_sizes(value: str) -> tuple[int, ...]:
    """ "100,1_000,10000" -> (100, 1000, 10000)."""
    return tuple(int(size.replace("_", "")) for size in value.split(","))


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _generate_roadmaps(dsn: str, sizes: Sequence[int]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for size in sizes:
            await generate.add_roadmap(connection, f"scale-{size}", size, datetime.now(UTC))
        await generate.analyze(connection)
    finally:
        await connection.close()


@dataclass(frozen=True)
class Repeated:
    """Each point measured `times` times; the run with the median p50 stands for it, so one
    run disturbed by another process on the machine does not decide a verdict."""

    times: int

    def __call__(
        self, name: str, url: str, load: Load, headers: dict[str, str] | None = None
    ) -> Result:
        return median_run([wrk(name, url, load, headers) for _ in range(self.times)])


def median_run(results: Sequence[Result]) -> Result:
    return sorted(results, key=lambda result: result.p50_ms)[(len(results) - 1) // 2]


def measure_trees(
    measure: Repeated,
    baseline: Server,
    uncached: Server,
    cached: Server,
    sizes: Sequence[int],
    load: Load,
) -> list[Measurement]:
    measurements = []
    for size in sizes:
        step(f"tree of {size} topics")
        reference = measure("baseline: minimal FastAPI", f"{baseline.base}/", load)
        for server, label in ((uncached, "tree, cache off"), (cached, "tree, cached")):
            url = f"{server.base}/v1/roadmaps/scale-{size}/tree"
            measurements.append(Measurement(label, size, measure(label, url, load), reference))
    return measurements


def measure_personal(
    measure: Repeated,
    baseline: Server,
    app: Server,
    bearer: dict[str, str],
    dsn: str,
    sizes: Sequence[int],
    learners: int,
    load: Load,
) -> list[Measurement]:
    endpoints = {
        "progress summary, cache off": f"{app.base}/v1/me/progress/backend/summary",
        "due reviews": f"{app.base}/v1/me/reviews/due",
    }
    measurements = []
    grown_to = 0
    for size in sizes:
        step(f"growing other learners' progress to {size:,} rows")
        asyncio.run(_grow_progress(dsn, learners, range(grown_to, size)))
        grown_to = size
        reference = measure("baseline: minimal FastAPI", f"{baseline.base}/", load)
        for label, url in endpoints.items():
            result = measure(label, url, load, bearer)
            measurements.append(Measurement(label, size, result, reference))
    return measurements


async def _grow_progress(dsn: str, learners: int, rows: range) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        ids = await connection.fetch(
            "SELECT id FROM users WHERE email LIKE '%@scale.example' ORDER BY id"
        )
        learner_ids = [row["id"] for row in ids]
        if not learner_ids:
            learner_ids = await generate.add_learners(connection, learners, now)
        roadmap_id = await connection.fetchval("SELECT id FROM roadmaps WHERE slug = 'backend'")
        topics = await generate.leaf_topic_ids(connection, roadmap_id)
        await generate.add_progress(connection, learner_ids, roadmap_id, topics, rows, now)
        await generate.analyze(connection)
    finally:
        await connection.close()


ROW = "{:<30} {:>10} {:>9} {:>8} {:>9} {:>7} {:>9} {:>10}"


def print_table(measurements: list[Measurement]) -> None:
    """One row per endpoint and size; the last columns compare each size with the smallest."""
    header = ("endpoint", "size", "req/s", "p50 ms", "p99 ms", "failed", "x fastapi")
    print(ROW.format(*header, "p50 vs 1st"))
    first: dict[str, Measurement] = {}
    for m in measurements:
        smallest = first.setdefault(m.endpoint, m)
        r = m.result
        figures = (f"{m.size:,}", f"{r.rps:.1f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", r.bad)
        ratio = f"{r.rps / m.baseline.rps:.4f}"
        print(ROW.format(m.endpoint, *figures, ratio, f"{growth(smallest, m):.2f}x"))


def growth(smallest: Measurement, larger: Measurement) -> float:
    """How much slower the larger size is, p50 against p50."""
    return larger.result.p50_ms / smallest.result.p50_ms


def normalised_growth(smallest: Measurement, larger: Measurement) -> float:
    """The growth with the machine's change taken out: if the baseline served 10 % fewer
    requests at the larger size, 10 % of the slowdown was the machine's, not skilltree's."""
    machine = smallest.baseline.rps / larger.baseline.rps
    return growth(smallest, larger) / machine


def print_verdict(personal: list[Measurement]) -> None:
    first: dict[str, Measurement] = {}
    print()
    for m in personal:
        smallest = first.setdefault(m.endpoint, m)
        if m is smallest:
            continue
        change = growth(smallest, m) - 1
        normalised = normalised_growth(smallest, m) - 1
        verdict = "within" if abs(normalised) <= TOLERANCE else "OUTSIDE"
        print(
            f"{m.endpoint}: p50 {change:+.0%} from {smallest.size:,} to {m.size:,} rows, "
            f"{normalised:+.0%} against the baseline ({verdict} ±{TOLERANCE:.0%})"
        )


if __name__ == "__main__":
    main()
