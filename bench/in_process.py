"""The app's CPU per request for one authenticated read, driven in-process: no HTTP server, no
client library, no load generator on the same cores.

    .venv/bin/python -m bench.in_process                          # the due list, 3 rounds
    .venv/bin/python -m bench.in_process --path /v1/me --query ""  # another read
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.in_process   # an exported older tree

`wrk` figures on a shared machine swing with the load (the minimal route's own CPU per request
moved by 60 % between rounds of one run); this measures only the application's process: its
CPU time (user + system, every thread) over N requests sent straight to the ASGI app, C at a
time, after the same staging as `bench.me --reads` (production shape, PostgreSQL, Redis, the
benchmark account with 50 finished topics). It leaves out uvicorn's HTTP parsing and writing,
which is the same for any code, so it is the figure to compare two versions of a route with:
run them one after the other, alternating, and compare within the pair.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import httpx
import uvloop

from bench.stage import prepare, redis_prefix, sign_in_with, skilltree_env, throwaway_database
from skilltree.app import create_app_from_environment

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


async def start(app: App) -> Callable[[], Awaitable[None]]:
    """Run the app's lifespan start-up; returns what shuts it down."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def lifespan() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)

    task = asyncio.create_task(lifespan())
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


async def call(
    app: App,
    method: str,
    target: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> bytes:
    """One request sent straight to the app as ASGI messages; its body. `target` is a path and
    its query; an answer other than 200 stops the run."""
    path, _, query = target.partition("?")
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    request_headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), *headers]
    if body:
        request_headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": request_headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"{method} {target} answered {sent[0]['status']}: {sent[1:]}")
    return b"".join(message.get("body", b"") for message in sent[1:])


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode()), (b"accept", b"*/*")]


async def drive(
    app: App, target: str, headers: list[tuple[bytes, bytes]], requests: int, concurrency: int
) -> None:
    async def one_connection(count: int) -> None:
        for _ in range(count):
            await call(app, "GET", target, headers)

    await asyncio.gather(*(one_connection(requests // concurrency) for _ in range(concurrency)))


async def measure(env: dict[str, str], args: argparse.Namespace) -> None:
    os.environ.update(env)
    app: App = create_app_from_environment()
    stop = await start(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        session = await sign_in_with(client, 50)
    target, headers = f"{args.path}?{args.query}", bearer(session.bearer)
    body = await call(app, "GET", target, headers)
    report(f"{target}: {len(body)} bytes; load average {os.getloadavg()[0]:.2f}")
    # Warm: pools, statement caches, local copies.
    await drive(app, target, headers, 300, args.concurrency)
    gc.collect()
    gc.freeze()  # as the server entry point does once the app is built
    for number in range(1, args.rounds + 1):
        cpu, wall = time.process_time(), time.perf_counter()
        await drive(app, target, headers, args.requests, args.concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        report(
            f"round {number}: {1000 * cpu / args.requests:.3f} ms CPU per request,"
            f" {args.requests / wall:.0f} req/s, load average {os.getloadavg()[0]:.2f}"
        )
    await stop()


def report(line: str) -> None:
    # stderr: the app's JSON log goes to stdout (send it to /dev/null).
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="/v1/me/reviews/due")
    parser.add_argument("--query", default="limit=20")
    parser.add_argument("--requests", type=int, default=2000, help="per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        uvloop.run(measure(env, args))


if __name__ == "__main__":
    main()
