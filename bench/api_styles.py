"""`python -m bench.api_styles`: the same two reads over REST and GraphQL, in one run.

Serves skilltree in production settings on a throwaway PostgreSQL database with Redis (as
`bench.run` does), signs the benchmark account in and finishes 50 topics, then fetches

    tree      the full built-in backend roadmap tree (GET /v1/roadmaps/backend/tree, and the
              same fields nested four levels deep through POST /graphql)
    summary   one learner's progress summary (GET /v1/me/progress/backend/summary, and
              `me { progress { summary, topics { summary } } }`)

with a bearer token and `Accept-Encoding: br`, `--concurrency` requests in flight, and reports
req/s, p50/p99 and the bytes on the wire (the response body as sent, compressed) and decoded.
GET /livez, through the same client in the same run, is the baseline every figure is divided
by, so a busy machine shows as a slow baseline rather than a slow API style.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bench.servers import serve
from bench.stage import (
    SKILLTREE_APP,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)

TOPIC_FIELDS = "slug title summary level tags concept estimateHours"
TREE_QUERY = (
    '{ roadmap(slug: "backend") { slug title topicCount tree { '
    + f"{TOPIC_FIELDS} children {{ {TOPIC_FIELDS} children {{ {TOPIC_FIELDS} "
    + f"children {{ {TOPIC_FIELDS} }} }} }} }} }} }}"
)
TALLY = "total todo inProgress done skipped percentDone totalHours remainingHours"
SUMMARY_QUERY = (
    '{ me { progress(roadmap: "backend") { roadmap summary { '
    + TALLY
    + " } topics { slug title status summary { "
    + TALLY
    + " } } } } }"
)


@dataclass(frozen=True)
class Figures:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    wire_bytes: int
    decoded_bytes: int


Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def measure(
    name: str, client: httpx.AsyncClient, send: Send, requests: int, concurrency: int
) -> Figures:
    for _ in range(10):  # warm: caches filled, connections open
        (await send(client)).raise_for_status()
    latencies: list[float] = []
    sizes: list[tuple[int, int]] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            response = await send(client)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            if response.request.url.path == "/graphql" and "errors" in response.json():
                raise RuntimeError(f"{name}: {response.json()['errors']}")
            sizes.append((response.num_bytes_downloaded, len(response.content)))

    wall = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - wall
    quantiles = statistics.quantiles(latencies, n=100)
    return Figures(
        name,
        requests / wall,
        quantiles[49] * 1000,
        quantiles[98] * 1000,
        sizes[-1][0],
        sizes[-1][1],
    )


async def run(base: str, bearer: str, requests: int, concurrency: int) -> list[Figures]:
    headers = {"authorization": f"Bearer {bearer}", "accept-encoding": "br"}

    def graphql(query: str) -> Send:
        return lambda c: c.post("/graphql", json={"query": query})

    cases: list[tuple[str, Send]] = [
        ("baseline GET /livez", lambda c: c.get("/livez")),
        ("tree REST", lambda c: c.get("/v1/roadmaps/backend/tree")),
        ("tree GraphQL", graphql(TREE_QUERY)),
        ("summary REST", lambda c: c.get("/v1/me/progress/backend/summary")),
        ("summary GraphQL", graphql(SUMMARY_QUERY)),
    ]
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:
        return [await measure(name, client, send, requests, concurrency) for name, send in cases]


def print_table(results: list[Figures]) -> None:
    baseline = results[0]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = f"{'case':<22}{'req/s':>9}{'× base':>8}{'p50 ms':>9}{'p99 ms':>9}"
    print(header + f"{'wire B':>9}{'decoded B':>11}")
    for row in results:
        ratio = row.requests_per_second / baseline.requests_per_second
        print(
            f"{row.name:<22}{row.requests_per_second:>9.0f}{ratio:>8.2f}{row.p50_ms:>9.1f}"
            f"{row.p99_ms:>9.1f}{row.wire_bytes:>9}{row.decoded_bytes:>11}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with throwaway_database() as url, redis_prefix() as prefix:
        env = skilltree_env(url, prefix)
        prepare(env)
        with serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as server:
            session = asyncio.run(sign_in(server.base))
            results = asyncio.run(run(server.base, session.bearer, args.requests, args.concurrency))
    print_table(results)


if __name__ == "__main__":
    main()
