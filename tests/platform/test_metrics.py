"""`GET /metrics`: the counters in the Prometheus text format, what the cache counts, the switch
that turns the endpoint off, and one scrape adding up every worker process's counters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.app import create_app
from skilltree.platform.config import MetricsSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.observability import metrics
from tests.support.metrics import sample
from tests.support.rows import make_roadmap

LOOKUPS = "skilltree_cache_lookups_total"
REQUESTS = "skilltree_http_requests_total"


async def test_metrics_are_prometheus_text_that_no_cache_keeps(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["cache-control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"skilltree_cache_lookups", "skilltree_rate_limit_decisions"} <= names


async def test_a_cached_read_counts_a_miss_then_hits(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    roadmap, _ = await make_roadmap(session, topics=3)
    misses = await sample(client, LOOKUPS, result="miss")
    hits = await sample(client, LOOKUPS, result="hit")

    for _ in range(3):
        assert (await client.get(f"/v1/roadmaps/{roadmap.slug}/tree")).status_code == 200

    assert await sample(client, LOOKUPS, result="miss") == misses + 1
    assert await sample(client, LOOKUPS, result="hit") == hits + 2


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    tree = {"method": "GET", "route": "/v1/roadmaps/{slug}/tree", "status": "404"}
    unmatched = {"method": "other", "route": "unmatched", "status": "404"}
    before = [await sample(client, REQUESTS, **labels) for labels in (tree, unmatched)]

    await client.get("/v1/roadmaps/no-such-roadmap/tree")
    await client.get("/v1/roadmaps/another-one/tree")
    await client.request("BREW", "/coffee/pot-1")  # neither the method nor the path is a label

    after = [await sample(client, REQUESTS, **labels) for labels in (tree, unmatched)]
    assert after == [before[0] + 2, before[1] + 1]
    text = (await client.get("/metrics")).text
    assert "no-such-roadmap" not in text
    assert "BREW" not in text
    assert (
        'skilltree_http_request_duration_seconds_count{method="GET",route="/v1/roadmaps/{slug}/tree"}'
        in text
    )


async def test_turned_off_metrics_are_a_404_problem(settings: Settings, database: Database) -> None:
    app = create_app(
        settings.model_copy(update={"metrics": MetricsSettings(enabled=False)}), database=database
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/metrics")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "SKILLTREE_METRICS_ENABLED" in response.json()["detail"]


COUNT_ONE_WAIT = "from skilltree.platform.observability import metrics; metrics.CACHE_WAITS.inc()"
SCRAPE = (
    "from prometheus_client import generate_latest\n"
    "from skilltree.platform.observability import metrics\n"
    "print(generate_latest(metrics.registry()).decode())"
)


def test_a_scrape_adds_up_the_counters_of_every_worker_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.MULTIPROCESS_DIR_VARIABLE, raising=False)
    directory = metrics.prepare_worker_processes(workers=3)
    assert directory is not None
    try:
        environment = dict(os.environ)  # now holds the shared directory, as workers inherit it
        for _ in range(3):  # three workers, each counting once
            subprocess.run([sys.executable, "-c", COUNT_ONE_WAIT], env=environment, check=True)
        scraped = subprocess.run(
            [sys.executable, "-c", SCRAPE], env=environment, check=True, capture_output=True
        ).stdout.decode()
    finally:
        del os.environ[metrics.MULTIPROCESS_DIR_VARIABLE]  # this process stays single
        shutil.rmtree(directory)

    assert "skilltree_cache_waits_total 3.0" in scraped


def test_one_worker_keeps_its_counters_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROCESS_DIR_VARIABLE, raising=False)

    assert metrics.prepare_worker_processes(workers=1) is None
    assert metrics.MULTIPROCESS_DIR_VARIABLE not in os.environ
