"""Comparing the fast path (platform/http/fast_path.py) with the full stack: an app served to a
client, the path's own layer, and responses and access-log lines with what differs by request
left out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from skilltree.app import create_app
from skilltree.platform.clock import Clock
from skilltree.platform.config import HttpSettings, RateLimitSettings, RedisSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.http.fast_path import FastPathMiddleware
from skilltree.platform.http.front_door import FrontDoorApp

# With Redis (pushed invalidation) and without (the embedded default: the cache in memory).
BOTH_BACKENDS = pytest.mark.parametrize(
    "shared_state", ["database", pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), client_of(app) as client:
        yield client


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own (its own cookie jar) of an app whose lifespan has started."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@asynccontextmanager
async def two_apps(
    settings: Settings, database: Database, clock: Clock
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """An app with the fast path and one without it, over the same database and Redis."""
    fast_app = create_app(settings, database=database, clock=clock)
    without = settings.model_copy(update={"http": HttpSettings(fast_path=False)})
    ordinary_app = create_app(without, database=database, clock=clock)
    async with (
        fast_app.router.lifespan_context(fast_app),
        ordinary_app.router.lifespan_context(ordinary_app),
    ):
        yield fast_app, ordinary_app


def fast_path_of(app: FastAPI) -> FastPathMiddleware:
    assert isinstance(app, FrontDoorApp)
    layer: Any = app.front_stack
    while not isinstance(layer, FastPathMiddleware):
        layer = layer.app
    return layer


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers (sorted), with what differs by request left out: the id, and
    the RateLimit header's count and reset (both apps spend one quota)."""
    headers = []
    for name, value in response.headers.multi_items():
        if name == "x-request-id":
            assert re.fullmatch(r"[0-9a-f]{32}|given-id", value)
            continue
        if name == "ratelimit":
            value = re.sub(r"r=\d+;t=\d+", "r=N;t=N", value)
        headers.append((name, value))
    # A problem names the request's id in its body too.
    body = re.sub(rb'"request_id":"[^"]*"', b'"request_id":"-"', response.content)
    return response.status_code, body, sorted(headers)


def access_lines(out: str) -> list[list[tuple[str, Any]]]:
    """The access-log lines written to stdout, as (field, value) in their order, with what
    differs by request left out: the duration, the id, the time."""
    varying = {"duration_ms", "request_id", "timestamp"}
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [
        [(k, v) for k, v in entry.items() if k not in varying]
        for entry in lines
        if entry.get("logger") == "skilltree.access"
    ]


def production_shape(settings: Settings, shared_state: RedisSettings) -> Settings:
    """The settings over Redis or not, with the limiter on as in production and a quota no
    test reaches."""
    return settings.model_copy(
        update={"redis": shared_state, "rate_limit": RateLimitSettings(read="100000/minute")}
    )
