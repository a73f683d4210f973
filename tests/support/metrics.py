"""Reading `GET /metrics` as Prometheus would: one sample's value by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def sample(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The sample's current value (0 when it has not been counted yet)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0
