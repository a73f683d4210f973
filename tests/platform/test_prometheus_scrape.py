"""A real Prometheus (the Debian package) scrapes a running skilltree on loopback, evaluates the
shipped rules, and answers a query with what skilltree counted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.processes import (
    ROOT,
    base_env,
    free_port,
    migrate,
    require_program,
    running,
    serve_command,
    wait_until_ready,
)

RULES = ROOT / "deploy" / "prometheus" / "rules" / "skilltree.yml"


def _prometheus_config(directory: Path, target: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "skilltree", "static_configs": [{"targets": [target]}]}],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def _query(prometheus: httpx.AsyncClient, expression: str, seconds: float) -> list[Any]:
    """The first non-empty result of an instant query, polled until it appears."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = (await prometheus.get("/api/v1/query", params={"query": expression})).json()
        except httpx.TransportError:
            answer = {}
        if answer.get("status") == "success" and answer["data"]["result"]:
            result: list[Any] = answer["data"]["result"]
            return result
        # Prometheus scrapes on its own schedule: nothing to wait on but the next scrape.
        await asyncio.sleep(0.5)
    raise AssertionError(f"Prometheus had no result for {expression} within {seconds} s")


async def test_prometheus_scrapes_skilltree_and_answers_a_query(tmp_path: Path) -> None:
    prometheus_program = require_program("prometheus", "prometheus")
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'scraped.db'}")
    migrate(env["SKILLTREE_DATABASE_URL"])
    port, prometheus_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    prometheus_command = [
        prometheus_program,
        f"--config.file={_prometheus_config(tmp_path, f'127.0.0.1:{port}')}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    with (
        running(serve_command(port), env, tmp_path / "serve.log") as server,
        running(prometheus_command, env, tmp_path / "prometheus.log"),
    ):
        await asyncio.to_thread(wait_until_ready, base, server)
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(7):
                assert (await client.get("/v1/roadmaps")).status_code == 200
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{prometheus_port}", timeout=5
        ) as prometheus:
            counted = await _query(
                prometheus,
                'skilltree_http_requests_total{route="/v1/roadmaps",status="200"} >= 7',
                seconds=60,
            )
            ready = await _query(prometheus, "skilltree_ready", seconds=30)
            up = await _query(prometheus, 'up{job="skilltree"}', seconds=30)
            rules = (await prometheus.get("/api/v1/rules")).json()["data"]["groups"]

    assert float(counted[0]["value"][1]) == 7.0
    assert counted[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    assert float(ready[0]["value"][1]) == 1.0
    assert float(up[0]["value"][1]) == 1.0
    evaluated = [rule for group in rules for rule in group["rules"]]
    assert len(evaluated) == 33
    assert "err" not in {rule["health"] for rule in evaluated}  # every expression evaluates
