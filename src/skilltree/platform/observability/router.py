"""`GET /metrics`: every counter in the Prometheus text format, for a scraper on the inside.

It tells nothing about any user, but it does describe traffic: where the service is reachable
from the internet, keep /metrics to the internal network at the proxy (docs/observability.md),
or turn it off with SKILLTREE_METRICS_ENABLED=false.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from skilltree.platform.errors import NotFound
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.observability import gauges
from skilltree.platform.observability import metrics as counters
from skilltree.platform.state import AppResources

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **problem_responses(404),
    },
)
async def metrics(resources: AppResources) -> Response:
    """Every counter of every worker process, in the Prometheus text format."""
    if not resources.settings.metrics.enabled:
        raise NotFound("Metrics are turned off (SKILLTREE_METRICS_ENABLED=false).")
    gauges.measure_pool(resources.database)
    await gauges.measure_backlog(resources.database, resources.clock.now())
    body = generate_latest(counters.registry())
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
