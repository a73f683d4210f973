"""`make bench`: skilltree in its production shape, measured against baselines in one run.

On loopback only. The script
1. stages the data: a throwaway PostgreSQL database and Redis key prefix (or, with
   `--database sqlite`, a throwaway SQLite file and no Redis: the embedded default), migrated,
   with the built-in roadmap and a benchmark account with some progress (so there are review
   cards);
2. captures each endpoint from skilltree itself (bench/capture.py): the database statements and
   Redis calls one request makes, with their parameters, and its response;
3. starts the servers the same way (one worker, uvloop; under uvicorn with httptools, under
   granian in ASGI mode, or each in turn with `--server both`): the bare ASGI baseline, the
   minimal FastAPI baseline, the same-work ceiling (bench/ceiling.py: the captured calls made
   with asyncpg/aiosqlite and redis-py directly, the same response), the same work from one
   FastAPI route (`ceiling.framework`), and skilltree with its access log on (written to
   /dev/null) and its rate limiter on with quotas too large to trip;
4. drives each endpoint with wrk, skilltree's, then its ceiling's and its FastAPI same-work
   route's, and prints per server
   - req/s, p50, p99, failed requests and the ratios to the baselines;
   - the same work: req/s against the ceiling's, statements and Redis calls per request, and
     the CPU per request of the worker, of the ceiling's worker and of PostgreSQL's backends;
   - what the framework alone allows: the FastAPI same-work route against the ceiling, and
     skilltree against that route;
   - the worker's RSS (after the reads and writes, right after the sign-ins, once those are
     done);
5. with `--two-workers`, measures the read endpoints again with skilltree on two workers, and
   the same-work ceiling on one process and on two, and prints the ratios to one with where
   the cores went (each worker, PostgreSQL, Redis, wrk, the rest of the machine:
   bench/usage.py); `--two-worker-rounds N` repeats this N times, each later round against a
   fresh one-worker skilltree measured right before, and prints every round's ratios.

`--crowd` runs bench/crowd.py instead: the read endpoints and the write at 1,024 connections.

Figures are only comparable within one run: the baselines are measured beside skilltree so the
ratios cancel out what the machine was doing. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import httpx

from bench import ceiling
from bench.capture import CAPTURE_DIR, Record
from bench.endpoints import LOGIN, Endpoint, page_endpoints, skilltree_endpoints
from bench.servers import SERVER_KINDS, Server, ServerKind, serve, wait_until_idle
from bench.stage import REDIS_URL as BENCH_REDIS_URL
from bench.stage import (
    SKILLTREE_APP,
    Session,
    asyncpg_dsn,
    prepare,
    redis_prefix,
    sign_in_with,
    skilltree_env,
    sqlite_path,
    throwaway_database,
    throwaway_sqlite,
)
from bench.usage import CoreMeter, load_average
from bench.wrk import Load, Result, require_wrk, wrk

CAPTURE_APP = "bench.capture:create_app"


@dataclass
class Stage:
    """What every server of the run shares: the data, skilltree's settings, the captures."""

    database_url: str
    env: dict[str, str]
    session: Session
    endpoints: list[Endpoint]
    spec_path: Path
    # Statements and Redis calls per request, by endpoint name (the mean over a write's variants)
    counts: dict[str, tuple[float, float]]

    @property
    def on_postgresql(self) -> bool:
        return self.database_url.startswith("postgresql")

    def ceiling_env(self) -> dict[str, str]:
        from skilltree.platform.config import DatabaseSettings

        defaults = DatabaseSettings()
        pool = defaults.pool_size + defaults.max_overflow if self.on_postgresql else 5
        database = (
            asyncpg_dsn(self.database_url) if self.on_postgresql else sqlite_path(self.database_url)
        )
        return {
            ceiling.SPEC: str(self.spec_path),
            ceiling.DATABASE: database,
            ceiling.REDIS: BENCH_REDIS_URL if "SKILLTREE_REDIS_URL" in self.env else "",
            ceiling.POOL: str(pool),
        }


@dataclass
class Run:
    kind: ServerKind
    results: list[Result]
    rss_mb: dict[str, float]
    ceilings: dict[str, Result] = field(default_factory=dict)  # endpoint name -> its ceiling
    # Endpoint name -> the same work from one FastAPI route (what the framework alone allows).
    frameworks: dict[str, Result] = field(default_factory=dict)
    counts: dict[str, tuple[float, float]] = field(default_factory=dict)  # as Stage.counts
    # Per round of --two-workers: each read endpoint on one worker and then on two.
    two_workers: list[list[tuple[Result, Result]]] = field(default_factory=list)
    # The same for the same-work ceiling on one process and on two (what this machine allows).
    ceiling_two_workers: list[list[tuple[Result, Result]]] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--server", choices=[*SERVER_KINDS, "both"], default="uvicorn")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--two-workers",
        action="store_true",
        help="also measure the read endpoints with skilltree on two workers",
    )
    parser.add_argument(
        "--two-worker-rounds",
        type=int,
        default=1,
        metavar="N",
        help="with --two-workers: N rounds; each after the first measures the read endpoints"
        " on a fresh one-worker skilltree and then on two workers, back to back",
    )
    parser.add_argument(
        "--crowd",
        action="store_true",
        help="instead: the read endpoints and the write at --crowd-connections (bench/crowd.py)",
    )
    parser.add_argument("--crowd-connections", type=int, default=1024)
    parser.add_argument(
        "--crowd-only",
        default="",
        metavar="TEXT",
        help="with --crowd: only the endpoints whose name contains TEXT (e.g. 'tree')",
    )
    parser.add_argument(
        "--crowd-honour-retry-after",
        action="store_true",
        help="with --crowd: after a 503, each client waits as long as its Retry-After says",
    )
    parser.add_argument(
        "--timeout", type=int, default=30, help="seconds before wrk gives a request up"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="KEY",
        help="measure only these endpoints (by key: write, due, me, ...; repeat for more),"
        " against the baselines and their ceilings, without the sign-ins",
    )
    parser.add_argument(
        "--captures",
        type=Path,
        help="write each endpoint's captured calls (statements, Redis commands) to this file",
    )
    args = parser.parse_args()
    if args.two_workers and args.database == "sqlite":
        # What `skilltree serve` refuses: without Redis each worker keeps its own cache.
        parser.error("--two-workers needs Redis: the embedded default serves on one worker")
    require_wrk()
    raise_open_files_limit()
    # A timeout well beyond any answer: a slow answer is then measured in p99 rather than
    # counted as a failure and left out of the latencies.
    load = Load(args.duration, args.connections, args.threads, args.timeout)
    kinds: tuple[ServerKind, ...] = SERVER_KINDS if args.server == "both" else (args.server,)
    print(f"load average at the start: {load_average()}", flush=True)

    kind: ServerKind = kinds[0]
    with staged(args.database, kind, args.captures) as stage:
        if args.crowd:
            from bench.crowd import crowd_run

            crowd_run(
                stage,
                kinds[0],
                args.duration,
                args.crowd_connections,
                honour_retry_after=args.crowd_honour_retry_after,
                only=args.crowd_only,
            )
            print(f"\nload average at the end: {load_average()}")
            return
        if args.only:
            stage = replace(stage, endpoints=[e for e in stage.endpoints if e.key in args.only])
        runs = [
            measure_under(
                kind,
                stage,
                load,
                two_worker_rounds=args.two_worker_rounds if args.two_workers else 0,
                sign_ins=not args.only,
            )
            for kind in kinds
        ]
    for run in runs:
        print(f"\n## {run.kind}, {args.database}\n")
        print_table(run.results)
        print(f"\n### the same work ({run.kind})\n")
        print_same_work(run)
        print(f"\n### what the framework alone allows ({run.kind})\n")
        print_framework(run)
        print()
        for name, rss in run.rss_mb.items():
            print(f"RSS of the worker, {name} ({run.kind}): {rss:.0f} MiB")
        rounds = zip(run.two_workers, run.ceiling_two_workers, strict=True)
        for number, (pairs, tops) in enumerate(rounds, start=1):
            print(f"\n### two workers against one ({run.kind}), round {number}\n")
            print_two_workers(pairs)
            print(f"\n### the same-work ceiling, two processes against one, round {number}\n")
            print_two_workers(tops)
        if run.two_workers:
            print(f"\n### two workers against one ({run.kind}), every round\n")
            print_two_worker_rounds(run.two_workers, run.ceiling_two_workers)
    if len(runs) == 2:
        print(f"\n## {runs[1].kind} against {runs[0].kind}\n")
        print_comparison(runs[0], runs[1])
    print(f"\nload average at the end: {load_average()}")


def raise_open_files_limit() -> None:
    """As many open files as the system allows, for this process and the servers it starts
    (at 1,024 connections the client and the server each hold more than 1,024 sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def staged(database: str, kind: ServerKind, listing: Path | None = None) -> Iterator[Stage]:
    """The data, the benchmark account signed in, and every endpoint captured."""
    with (
        throwaway_sqlite() if database == "sqlite" else throwaway_database() as database_url,
        redis_prefix() as prefix,
        tempfile.TemporaryDirectory(prefix="skilltree-bench-capture-") as directory,
    ):
        env = skilltree_env(database_url, prefix if database == "postgresql" else None)
        prepare(env)
        captures = Path(directory)
        with serve("skilltree (capture)", kind, CAPTURE_APP, env | {CAPTURE_DIR: directory},
                   factory=True) as app:  # fmt: skip
            session, endpoints, captured = asyncio.run(sign_in_and_capture(app.base, captures))
        if listing is not None:
            listing.write_text(describe_captures(endpoints, captured))
        spec_path = captures / "spec.pickle"
        ceiling.write_spec(ceiling.build_spec(captured), spec_path)
        counts = {}
        for endpoint in endpoints:
            records = captured[endpoint.key][-1]
            counts[endpoint.name] = (
                sum(r.statements for r in records) / len(records),
                sum(r.redis_calls for r in records) / len(records),
            )
        yield Stage(database_url, env, session, endpoints, spec_path, counts)


def describe_captures(endpoints: list[Endpoint], captured: dict[str, list[list[Record]]]) -> str:
    """Each endpoint's calls, as the last captured round made them, one a line."""
    lines = []
    for endpoint in endpoints:
        for variant, record in enumerate(captured[endpoint.key][-1]):
            lines.append(f"## {endpoint.name} (request {variant + 1}): {record.status}, "
                         f"{len(record.body)} bytes")  # fmt: skip
            for index, call in enumerate(record.calls):
                after = " (after the response began)" if index >= record.split else ""
                lines.append(f"{call.describe()}{after}")
            lines.append("")
    return "\n".join(lines)


async def sign_in_and_capture(
    base: str, directory: Path
) -> tuple[Session, list[Endpoint], dict[str, list[list[Record]]]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        session = await sign_in_with(client)
        endpoints = [*skilltree_endpoints(session), *page_endpoints(session)]
        return session, endpoints, await ceiling.capture(client, endpoints, directory)


def measure_under(
    kind: ServerKind,
    stage: Stage,
    load: Load,
    *,
    two_worker_rounds: int = 0,
    sign_ins: bool = True,
) -> Run:
    """Start the baselines, the ceiling and skilltree under one server; measure every endpoint.
    Then, for each of `two_worker_rounds`, the read endpoints on two workers against one: the
    first round against the one-worker figures just measured, each later one against a fresh
    one-worker skilltree measured right before (a busy machine then moves both alike)."""
    with (
        serve("bare", kind, "bench.baselines:bare", {}) as bare,
        serve("fastapi", kind, "bench.baselines:fastapi", {}) as minimal,
        serve("ceiling", kind, "bench.ceiling:app", stage.ceiling_env()) as top,
        serve(
            "framework", kind, "bench.ceiling:framework", stage.ceiling_env(), factory=True
        ) as framework,
        serve("skilltree", kind, SKILLTREE_APP, stage.env, factory=True) as app,
    ):
        run = measure(bare, minimal, top, framework, app, stage, load, sign_ins=sign_ins)
    reads = [e for e in stage.endpoints if e.read and e.key != "livez"]
    for number in range(two_worker_rounds):
        if number == 0:
            one = {r.name: r for r in run.results}
        else:
            one = measure_reads(kind, stage, load, reads, workers=1)
        two = measure_reads(kind, stage, load, reads, workers=2)
        run.two_workers.append([(one[e.name], two[e.name]) for e in reads])
        tops = [measure_reads(kind, stage, load, reads, workers=n, ceiling=True) for n in (1, 2)]
        run.ceiling_two_workers.append([(tops[0][e.name], tops[1][e.name]) for e in reads])
    return run


def measure_reads(
    kind: ServerKind,
    stage: Stage,
    load: Load,
    reads: list[Endpoint],
    *,
    workers: int,
    ceiling: bool = False,
) -> dict[str, Result]:
    """The read endpoints on a skilltree (or its same-work ceiling) of `workers` workers, by
    endpoint name."""
    if ceiling:
        server = serve("ceiling", kind, "bench.ceiling:app", stage.ceiling_env(), workers=workers)
    else:
        server = serve("skilltree", kind, SKILLTREE_APP, stage.env, factory=True, workers=workers)
    with server as app:
        return {
            e.name: metered(
                app, stage, partial(drive, app, e, load, path=f"/{e.key}" if ceiling else None)
            )
            for e in reads
        }


# --- the endpoints -----------------------------------------------------------------------------


def drive(server: Server, endpoint: Endpoint, load: Load, *, path: str | None = None) -> Result:
    url = f"{server.base}{path or endpoint.path}"
    return wrk(endpoint.name, url, load, endpoint.headers, endpoint.wrk_script())


def metered(server: Server, stage: Stage, run: Callable[[], Result]) -> Result:
    """The result of `run`, with the CPU seconds each process used meanwhile
    (bench/usage.py): `worker` (and `worker 1`, `worker 2`… of several), `postgresql` (the
    backends of the run's database), `wrk`, `redis`, `machine`, `other`, … A worker that is
    not the same process at the end (its supervisor replaced it) is reported."""
    database = stage.database_url.rsplit("/", 1)[1] if stage.on_postgresql else None
    workers = server.worker_pids()
    meter = CoreMeter(database, workers=workers, supervisors=server.supervisor_pids())
    result = run()
    result.cpu.update(meter.used())
    if server.worker_pids() != workers:
        print(f"warning: {server.name}'s workers changed during {result.name!r}: "
              f"{workers} -> {server.worker_pids()}", file=sys.stderr)  # fmt: skip
    return result


def measure(
    bare: Server,
    minimal: Server,
    top: Server,
    framework: Server,
    app: Server,
    stage: Stage,
    load: Load,
    *,
    sign_ins: bool = True,
) -> Run:
    """Every endpoint's result and its ceiling's, and skilltree's memory after the reads and
    writes and after the sign-ins (each argon2id hash holds 64 MiB while it runs)."""
    baselines = [
        metered(bare, stage, lambda: wrk("baseline: bare ASGI", f"{bare.base}/", load)),
        metered(minimal, stage, lambda: wrk("baseline: minimal FastAPI", f"{minimal.base}/", load)),
    ]
    results: list[Result] = []
    ceilings: dict[str, Result] = {}
    frameworks: dict[str, Result] = {}
    memory: dict[str, float] = {}
    for endpoint in stage.endpoints:
        if endpoint.key.startswith("page-") and not memory:
            memory["skilltree, after the reads and writes"] = app.rss_mb()
        results.append(metered(app, stage, partial(drive, app, endpoint, load)))
        # Half as long: the ceiling's rate settles as fast, and the whole run stays short.
        ceiling_load = replace(load, seconds=max(1, load.seconds // 2))
        ceilings[endpoint.name] = metered(
            top, stage, partial(drive, top, endpoint, ceiling_load, path=f"/{endpoint.key}")
        )
        frameworks[endpoint.name] = metered(
            framework,
            stage,
            partial(drive, framework, endpoint, ceiling_load, path=f"/{endpoint.key}"),
        )
    # The web app: Jinja2 loads with the first page, Pygments with the first source shown. The
    # memory after them, less the figure above, is what the web app costs a worker.
    memory["skilltree, after the web pages"] = app.rss_mb()
    if sign_ins:
        results.append(measure_sign_ins(app, stage, load, memory))
    for result in results:
        result.ratios = {
            "bare": quotient(result.rps, baselines[0].rps),
            "fastapi": quotient(result.rps, baselines[1].rps),
        }
        if result.name in ceilings:
            result.ratios["ceiling"] = quotient(result.rps, ceilings[result.name].rps)
    rss = {s.name: s.rss_mb() for s in (bare, minimal, top)} | memory
    return Run(app.kind, [*baselines, *results], rss, ceilings, frameworks, stage.counts)


def measure_sign_ins(app: Server, stage: Stage, load: Load, memory: dict[str, float]) -> Result:
    """The sign-ins (argon2id-bound), and the worker's memory right after and once idle."""
    login = metered(app, stage, lambda: drive(app, LOGIN, load))
    memory["skilltree, right after the sign-ins"] = app.rss_mb()
    # Sign-ins wrk stopped waiting for are still being hashed: memory once they are done.
    wait_until_idle(app.worker_pid())
    memory["skilltree, after the sign-ins, once idle"] = app.rss_mb()
    return login


ROW = "{:<42} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9}"


def quotient(a: float, b: float) -> float:
    """a / b, NaN when b is 0 (a run too short or too slow for a single response)."""
    return a / b if b else float("nan")


def _ratio(result: Result, name: str) -> str:
    value = result.ratios.get(name, float("nan"))
    return "-" if math.isnan(value) else f"{value:.3f}"


def print_table(results: list[Result]) -> None:
    print(ROW.format("endpoint", "req/s", "p50 ms", "p99 ms", "failed", "x bare", "x fastapi",
                     "x ceiling"))  # fmt: skip
    for r in results:
        figures = (f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", r.bad)
        ratios = (_ratio(r, "bare"), _ratio(r, "fastapi"), _ratio(r, "ceiling"))
        print(ROW.format(r.name, *figures, *ratios))


SAME_WORK_ROW = "{:<42} {:>9} {:>9} {:>9} {:>5} {:>5} {:>8} {:>8} {:>8} {:>6}"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def print_same_work(run: Run) -> None:
    """Each endpoint against its ceiling: what skilltree's own layers cost."""
    print(SAME_WORK_ROW.format("endpoint", "req/s", "ceil r/s", "x ceiling", "sql", "redis",
                               "cpu ms", "ceil ms", "pg ms", "failed"))  # fmt: skip
    for r in run.results:
        top = run.ceilings.get(r.name)
        if top is None:
            continue
        counts = tuple(f"{n:g}" for n in run.counts.get(r.name, ()))
        print(
            SAME_WORK_ROW.format(
                r.name,
                f"{r.rps:.0f}",
                f"{top.rps:.0f}",
                _ratio(r, "ceiling"),
                *counts,
                _ms(r.cpu_ms_per_request("worker")),
                _ms(top.cpu_ms_per_request("worker")),
                _ms(r.cpu_ms_per_request("postgresql")),
                top.bad,
            )
        )
    print(
        "\nsql, redis: statements and Redis calls per request (the captured request; a write"
        " alternates, the figure is the mean). cpu ms: the worker's CPU per request; ceil ms:"
        " the ceiling's; pg ms: PostgreSQL's backends' during skilltree's run. failed: the"
        " ceiling's failed requests."
    )


FRAMEWORK_ROW = "{:<42} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}"


def print_framework(run: Run) -> None:
    """Each endpoint's same work from one FastAPI route, against the ceiling and skilltree:
    how much of the ceiling the framework alone leaves, and what skilltree's own layers cost
    beyond it."""
    print(FRAMEWORK_ROW.format("endpoint", "req/s", "fw r/s", "ceil r/s", "fw x ceil",
                               "x fw", "fw ms", "failed"))  # fmt: skip
    for r in run.results:
        top, framework = run.ceilings.get(r.name), run.frameworks.get(r.name)
        if top is None or framework is None:
            continue
        print(
            FRAMEWORK_ROW.format(
                r.name,
                f"{r.rps:.0f}",
                f"{framework.rps:.0f}",
                f"{top.rps:.0f}",
                _ms(quotient(framework.rps, top.rps)),
                _ms(quotient(r.rps, framework.rps)),
                _ms(framework.cpu_ms_per_request("worker")),
                framework.bad,
            )
        )
    print(
        "\nfw: the endpoint's captured calls and response from one FastAPI route (no middleware,"
        " no ORM). fw x ceil: the most any FastAPI route doing that work reached here, as a"
        " fraction of the ceiling; x fw: skilltree against it. fw ms: that route's CPU per"
        " request. failed: its failed requests."
    )


TWO_ROW = "{:<42} {:>9} {:>9} {:>7} {:>7}"
CORES_ROW = "{:<42} {:>11} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7}"
# Where the cores went, in the order the table shows them (bench/usage.py).
CORE_COLUMNS = ("supervisor", "postgresql", "postgresql ended", "postgresql other", "redis",
                "wrk", "bench", "other", "machine")  # fmt: skip


def print_two_workers(pairs: list[tuple[Result, Result]]) -> None:
    """req/s on two workers over one, then where the cores went in each run."""
    cores = os.cpu_count() or 1
    print(TWO_ROW.format("endpoint", "1 worker", "2 workers", "2 / 1", "failed"))
    for one, two in pairs:
        print(TWO_ROW.format(one.name, f"{one.rps:.0f}", f"{two.rps:.0f}",
                             f"{quotient(two.rps, one.rps):.2f}", two.bad))  # fmt: skip
    print(f"\nwhere the cores went (CPU seconds per second of the run, of {cores})\n")
    print(CORES_ROW.format("endpoint, workers", "workers", "superv", "pg db", "pg end",
                           "pg oth", "redis", "wrk", "bench", "other", "busy",
                           "pg conn/k", "cpu ms"))  # fmt: skip
    for one, two in pairs:
        for label, result in (("1", one), ("2", two)):
            print(CORES_ROW.format(f"{one.name[:37]}, {label}", *core_figures(result)))
    print(
        "\nworkers: each worker's share (+ between workers); superv: uvicorn's parent of two"
        " workers; pg db: PostgreSQL's backends of the run's database; pg end: backends that"
        " ended during the run (of any database; a pool closing connections); pg oth: the"
        " rest of PostgreSQL (other databases, its own processes); wrk: the load generator;"
        " bench: this script; other: the rest of the machine's busy time (another user's"
        " work, the kernel); busy: all of it. pg conn/k: connections the run's database"
        " began per 1,000 responses. cpu ms: the workers' CPU per response, which the share"
        " of the machine they got does not change. When the machine is busy and the workers"
        " get little of it, other work is the limit; when PostgreSQL takes what the workers"
        " leave, PostgreSQL is."
    )


def print_two_worker_rounds(
    rounds: list[list[tuple[Result, Result]]], ceilings: list[list[tuple[Result, Result]]]
) -> None:
    """Two workers over one, endpoint by endpoint, in each round and their median; and the
    same for the same-work ceiling on two processes over one (what this machine allows)."""
    header = [f"round {n}" for n in range(1, len(rounds) + 1)]
    row = "{:<42}" + " {:>8}" * (len(rounds) + 1)
    print(row.format("2 / 1", *header, "median"))
    for label, table in (("", rounds), ("ceiling: ", ceilings)):
        for index, (first, _) in enumerate(table[0]):
            ratios = [quotient(pairs[index][1].rps, pairs[index][0].rps) for pairs in table]
            # A side with failed requests measured something else (401s, 503s): marked.
            marks = ["!" if pairs[index][0].bad or pairs[index][1].bad else "" for pairs in table]
            clean = [r for r, mark in zip(ratios, marks, strict=True) if not mark]
            median = f"{statistics.median(clean):.2f}" if clean else "-"
            figures = (f"{r:.2f}{mark}" for r, mark in zip(ratios, marks, strict=True))
            print(row.format(f"{label}{first.name}"[:42], *figures, median))
    print("\n!: a side of that round had failed requests; the median leaves those rounds out.")


def core_figures(result: Result) -> list[str]:
    """A `CORES_ROW`'s figures for one run, from its `cpu` (bench/usage.py's keys)."""
    seconds = result.seconds or float("nan")
    workers = sorted(k for k in result.cpu if k.startswith("worker "))
    if not workers:
        return ["-"] * 12
    shares = "+".join(f"{result.cpu[k] / seconds:.2f}" for k in workers)
    figures = [f"{result.cpu.get(name, float('nan')) / seconds:.2f}" for name in CORE_COLUMNS]
    per_thousand = quotient(result.cpu.get("pg sessions", float("nan")), result.requests / 1000)
    return [shares, *figures, f"{per_thousand:.1f}", _ms(result.cpu_ms_per_request("worker"))]


COMPARISON_ROW = "{:<42} {:>10} {:>10} {:>9} {:>11} {:>11}"


def print_comparison(first: Run, second: Run) -> None:
    """req/s under each server, their quotient, and each one's ratio to its own FastAPI
    baseline: the quotient says which server is faster, the ratios whether the machine moved
    between the two runs."""
    a, b = first.kind, second.kind
    print(COMPARISON_ROW.format("endpoint", f"{a} r/s", f"{b} r/s", f"{b}/{a}",
                                f"{a} x fapi", f"{b} x fapi"))  # fmt: skip
    for x, y in zip(first.results, second.results, strict=True):
        figures = (f"{x.rps:.0f}", f"{y.rps:.0f}", f"{quotient(y.rps, x.rps):.2f}")
        print(COMPARISON_ROW.format(x.name, *figures, _ratio(x, "fastapi"), _ratio(y, "fastapi")))


if __name__ == "__main__":
    main()
