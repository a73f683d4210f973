"""`python -m bench.api_styles`: the same two reads over REST, GraphQL and gRPC, in one run.

Serves skilltree in production settings on a throwaway PostgreSQL database with Redis (as
`bench.run` does), signs the benchmark account in and finishes 50 topics, then fetches

    tree      the full built-in backend roadmap tree (GET /v1/roadmaps/backend/tree, and the
              same fields nested four levels deep through POST /graphql)
    summary   one learner's progress summary (GET /v1/me/progress/backend/summary, and
              `me { progress { summary, topics { summary } } }`)

with a bearer token and `Accept-Encoding: br`, `--concurrency` requests in flight, and reports
req/s, p50/p99 and the bytes on the wire (the response body as sent, compressed) and decoded.
The same two reads go to `skilltree grpc` (started beside the HTTP server, same settings and
database) as Roadmaps/GetTree and Progress/Summary over one HTTP/2 channel; their bytes are the
protobuf message and gRPC's 5-byte frame header (uncompressed, gRPC's default). A health check
over the same channel is gRPC's own floor, beside the /livez baseline.
GET /livez, through the same client in the same run, is the baseline every figure is divided
by, so a busy machine shows as a slow baseline rather than a slow API style.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.servers import free_port, serve
from bench.stage import (
    SKILLTREE_APP,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.usage import load_average
from skilltree.rpc.v1 import progress_pb2, roadmaps_pb2
from skilltree.rpc.v1.progress_pb2_grpc import ProgressStub
from skilltree.rpc.v1.roadmaps_pb2_grpc import RoadmapsStub

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
# One request, answering (bytes on the wire, bytes decoded).
Fetch = Callable[[], Awaitable[tuple[int, int]]]
GRPC_FRAME_HEADER = 5  # compressed flag and length before every message
# A loaded machine takes its time to import and start a server process.
STARTUP_SECONDS = 300


def over_http(name: str, client: httpx.AsyncClient, send: Send) -> Fetch:
    async def fetch() -> tuple[int, int]:
        response = await send(client)
        response.raise_for_status()
        if response.request.url.path == "/graphql" and "errors" in response.json():
            raise RuntimeError(f"{name}: {response.json()['errors']}")
        return response.num_bytes_downloaded, len(response.content)

    return fetch


def over_grpc(call: Callable[[], Awaitable[Message]]) -> Fetch:
    async def fetch() -> tuple[int, int]:
        size = (await call()).ByteSize()
        return size + GRPC_FRAME_HEADER, size

    return fetch


async def measure(name: str, fetch: Fetch, requests: int, concurrency: int) -> Figures:
    for _ in range(10):  # warm: caches filled, connections open
        await fetch()
    latencies: list[float] = []
    sizes: list[tuple[int, int]] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            size = await fetch()
            latencies.append(time.perf_counter() - started)
            sizes.append(size)

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


async def run(
    base: str, grpc_address: str, bearer: str, requests: int, concurrency: int
) -> list[Figures]:
    headers = {"authorization": f"Bearer {bearer}", "accept-encoding": "br"}
    metadata = (("authorization", f"Bearer {bearer}"),)

    def graphql(query: str) -> Send:
        return lambda c: c.post("/graphql", json={"query": query})

    limits = httpx.Limits(max_connections=concurrency)
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client,
        grpc.aio.insecure_channel(grpc_address) as channel,
    ):
        roadmaps, progress = RoadmapsStub(channel), ProgressStub(channel)
        # The typing stubs declare no methods on HealthStub.
        health_check = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
        health_request = health_pb2.HealthCheckRequest()
        tree_request = roadmaps_pb2.GetTreeRequest(roadmap="backend")
        summary_request = progress_pb2.SummaryRequest(roadmap="backend")
        cases: list[tuple[str, Fetch]] = [
            ("baseline GET /livez", over_http("livez", client, lambda c: c.get("/livez"))),
            # gRPC's own floor: the same client library and channel as the gRPC reads, a call
            # that does no work (the HTTP baseline pays for httpx, a Python client).
            ("baseline gRPC health", over_grpc(lambda: health_check(health_request))),
            ("tree REST", over_http("tree", client, lambda c: c.get("/v1/roadmaps/backend/tree"))),
            ("tree GraphQL", over_http("tree", client, graphql(TREE_QUERY))),
            ("tree gRPC", over_grpc(lambda: roadmaps.GetTree(tree_request, metadata=metadata))),
            (
                "summary REST",
                over_http("summary", client, lambda c: c.get("/v1/me/progress/backend/summary")),
            ),
            ("summary GraphQL", over_http("summary", client, graphql(SUMMARY_QUERY))),
            (
                "summary gRPC",
                over_grpc(lambda: progress.Summary(summary_request, metadata=metadata)),
            ),
        ]
        return [await measure(name, fetch, requests, concurrency) for name, fetch in cases]


def print_table(results: list[Figures]) -> None:
    baseline = results[0]
    print(f"load average: {load_average()}")
    header = f"{'case':<22}{'req/s':>9}{'× base':>8}{'p50 ms':>9}{'p99 ms':>9}"
    print(header + f"{'wire B':>9}{'decoded B':>11}")
    for row in results:
        ratio = row.requests_per_second / baseline.requests_per_second
        print(
            f"{row.name:<22}{row.requests_per_second:>9.0f}{ratio:>8.2f}{row.p50_ms:>9.1f}"
            f"{row.p99_ms:>9.1f}{row.wire_bytes:>9}{row.decoded_bytes:>11}"
        )


@contextmanager
def grpc_server(env: dict[str, str], port: int) -> Iterator[None]:
    """`skilltree grpc` beside the HTTP server, until the block ends (then SIGTERM)."""
    command = [str(Path(sys.executable).parent / "skilltree"), "grpc", "--port", str(port)]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            if not asyncio.run(_until_serving(f"127.0.0.1:{port}", process)):
                errors.seek(0)
                raise RuntimeError(f"skilltree grpc did not start: {errors.read()[-2000:]!r}")
            yield
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


async def _until_serving(address: str, process: subprocess.Popen[bytes]) -> bool:
    """Ask the health service until it says SERVING (False if the server exits first)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                # The typing stubs declare no methods on HealthStub.
                answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)  # type: ignore[attr-defined]
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with throwaway_database() as url, redis_prefix() as prefix:
        env = skilltree_env(url, prefix)
        prepare(env)
        grpc_port = free_port()
        with (
            serve("skilltree", "uvicorn", SKILLTREE_APP, env, factory=True) as server,
            grpc_server(env, grpc_port),
        ):
            session = asyncio.run(sign_in(server.base))
            address = f"127.0.0.1:{grpc_port}"
            figures = run(server.base, address, session.bearer, args.requests, args.concurrency)
            results = asyncio.run(figures)
    print_table(results)


if __name__ == "__main__":
    main()
