"""Health probes for orchestrators: liveness (the process runs) and readiness (it can serve).

They are deliberately different. Liveness touches nothing external: a database outage must not
make Kubernetes restart every healthy pod. Readiness checks the dependencies a request needs, so
a load balancer stops sending traffic to an instance that cannot serve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Response
from pydantic import BaseModel

from skilltree.platform.http.problems import problem_response, problem_responses
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.state import AppResources

READINESS_TIMEOUT_SECONDS = 2.0
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(tags=["health"])
log = get_logger("skilltree.health")


class Liveness(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = "ready"
    checks: dict[str, str]


@router.get("/livez", response_model=Liveness)
async def livez(response: Response) -> Liveness:
    """The process is up and its event loop answers."""
    response.headers.update(NO_STORE)
    return Liveness()


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(resources: AppResources, response: Response) -> Readiness | Response:
    """The instance can serve requests: its database (and Redis, when configured) answer
    within the timeout."""
    checks = {"database": await _check("database", resources.database.ping())}
    if resources.redis is not None:
        checks["redis"] = await _check("redis", resources.redis.ping())
    failing = sorted(name for name, state in checks.items() if state != "ok")
    if failing:
        return problem_response(
            503,
            title="Not ready",
            type_="/problems/not-ready",
            detail=f"Not reachable: {', '.join(failing)}.",
            headers=NO_STORE,
            checks=checks,
        )
    response.headers.update(NO_STORE)
    return Readiness(checks=checks)


async def _check(name: str, probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, READINESS_TIMEOUT_SECONDS)
    except Exception as error:  # whatever the failure, the instance is not ready
        log.warning("readiness check failed", check=name, error=type(error).__name__)
        return "failing"
    return "ok"
