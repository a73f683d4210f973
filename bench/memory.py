"""The worker's resident memory (VmRSS) at the points `make bench` reports it, without the rest.

    .venv/bin/python -m bench.memory                          # 2 s per endpoint, 64 connections
    .venv/bin/python -m bench.memory --variant MALLOC_ARENA_MAX=2 --rounds 3

Same staging and production shape as `make bench` (bench/stage.py: PostgreSQL, Redis, the
limiter and the access log on): the benchmark account signs in on a first server, then a fresh
worker is started, as `make bench` measures one that has not hashed a password. Its RSS is read
once it answers `/livez`, after wrk has driven each API endpoint of `make bench` in turn (the
reads and writes), and after the two web pages. With `--variant NAME=VALUE` (repeatable) each
round also starts a worker with those settings added to its environment, right after the
default one, so the two are compared under the same conditions; memory moves little with the
machine's load, but the rounds show how much it moves.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.endpoints import page_endpoints, skilltree_endpoints
from bench.servers import Server, serve, wait_until_idle
from bench.stage import (
    SKILLTREE_APP,
    Session,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.usage import load_average
from bench.wrk import Load, require_wrk, wrk

POINTS = ("started", "after the reads and writes", "after the web pages")


def worker_rss(env: dict[str, str], session: Session, load: Load) -> list[float]:
    """A fresh worker's MiB at each of POINTS."""
    figures = []
    with serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as app:
        figures.append(settled_rss(app))
        for endpoints in (skilltree_endpoints(session), page_endpoints(session)):
            for endpoint in endpoints:
                url = f"{app.base}{endpoint.path}"
                wrk(endpoint.name, url, load, endpoint.headers, endpoint.wrk_script())
            figures.append(settled_rss(app))
    return figures


def settled_rss(app: Server) -> float:
    """The RSS once requests wrk stopped waiting for are done."""
    wait_until_idle(app.worker_pid())
    return app.rss_mb()


def parse_variant(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=2, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also measure a worker with this added to its environment",
    )
    args = parser.parse_args()
    require_wrk()
    load = Load(args.duration, args.connections, 2, 30)
    print(f"load average at the start: {load_average()}")
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        with serve("skilltree (sign-in)", "uvicorn", SKILLTREE_APP, env, factory=True) as app:
            session = asyncio.run(sign_in(app.base))
        shapes = {"default": env}
        if args.variant:
            shapes[" ".join(f"{n}={v}" for n, v in args.variant)] = env | dict(args.variant)
        print("round | worker | " + " | ".join(f"MiB {point}" for point in POINTS))
        for number in range(1, args.rounds + 1):
            for name, shape in shapes.items():
                figures = worker_rss(shape, session, load)
                cells = " | ".join(f"{figure:.1f}" for figure in figures)
                print(f"{number} | {name} | {cells}", flush=True)
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
