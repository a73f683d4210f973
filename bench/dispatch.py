"""What the HTTP stack costs a routed request before its route runs, in this process, no database:

    .venv/bin/python -m bench.dispatch                                # this tree
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.dispatch         # an exported older tree

- routing: the app router's dispatch of six requests with every API route's `handle` a no-op,
  so only finding the route (and handing it on) is measured;
- middleware: `GET /v1/me` with a bearer token through skilltree's middleware, with the router
  replaced by an endpoint that sends a small JSON answer (production settings; the limiter
  counts in memory, not in Redis; the access log to /dev/null).

CPU µs per request (process time), best and median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from bench.in_process import call
from bench.usage import load_average

TARGETS = (
    ("GET", "/v1/me"),
    ("GET", "/v1/me/progress/backend"),
    ("GET", "/v1/me/reviews/due"),
    ("PUT", "/v1/me/progress/backend/http"),
    ("GET", "/v1/roadmaps/backend/tree"),
    ("DELETE", "/v1/me"),
)
BODY = b'{"id":"0c9f","email":"learner@example.com"}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    print(f"load average at the start: {load_average()}")
    print("request | µs CPU per request, best | median")
    with Path(os.devnull).open("w") as log, contextlib.redirect_stdout(log):  # the access log
        middleware = asyncio.run(_middleware(args.rounds, args.requests))
        routing = asyncio.run(_routing(args.rounds, args.requests))
    for name, values in {**routing, **middleware}.items():
        print(f"{name} | {min(values):.1f} | {statistics.median(values):.1f}")
    print(f"load average at the end: {load_average()}")


async def _routing(rounds: int, requests: int) -> dict[str, list[float]]:
    from fastapi.routing import APIRoute

    from skilltree.app import create_app
    from skilltree.platform.config import Settings

    async def handled(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        return None

    APIRoute.handle = handled  # type: ignore[method-assign]
    app = create_app(Settings())
    timings: dict[str, list[float]] = {f"routing {m} {p}": [] for m, p in TARGETS}
    for method, path in TARGETS:
        await _route(app, method, path, 100)  # warm (the router builds what it keeps)
    for _ in range(rounds):
        for method, path in TARGETS:
            started = time.process_time()
            await _route(app, method, path, requests)
            timings[f"routing {method} {path}"].append(
                1e6 * (time.process_time() - started) / requests
            )
    return timings


async def _route(app: Any, method: str, path: str, count: int) -> None:
    for _ in range(count):
        scope: MutableMapping[str, Any] = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "app": app,
        }
        await app.router(scope, _nothing, _nothing)
        assert "route" in scope  # found, and handed on


async def _middleware(rounds: int, requests: int) -> dict[str, list[float]]:
    os.environ.update(
        {
            "SKILLTREE_ENV": "production",
            "SKILLTREE_SECRET_KEY": secrets.token_urlsafe(32),
            "SKILLTREE_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
            "SKILLTREE_AUTH_COOKIE_SECURE": "false",
            "SKILLTREE_RATE_LIMIT_READ": "1000000000/minute",
        }
    )
    from skilltree.app import create_app
    from skilltree.platform.config import load_settings
    from skilltree.platform.observability.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log)
    app = create_app(settings)

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})

    app.router.middleware_stack = endpoint
    headers = [(b"authorization", b"Bearer " + b"a" * 40), (b"accept-encoding", b"gzip, br")]
    timings: list[float] = []
    for _ in range(rounds):
        for _ in range(200):
            await call(app, "GET", "/v1/me", headers)
        started = time.process_time()
        for _ in range(requests):
            await call(app, "GET", "/v1/me", headers)
        timings.append(1e6 * (time.process_time() - started) / requests)
    return {"middleware GET /v1/me": timings}


async def _nothing(*_: Any) -> Any:
    return None


if __name__ == "__main__":
    main()
