"""Health probes for orchestrators: startup (the instance may begin), liveness (the process
runs) and readiness (it can serve now).

They are deliberately different. Startup passes once the database schema is at the revision
this code expects (or a newer release's, which expand/contract keeps usable by this one), so a
new version's pods wait for the migration job instead of serving against an old schema (and
liveness is not checked before then). Liveness touches nothing external: a database outage must
not make Kubernetes restart every healthy pod. Readiness checks
the dependencies a request needs, and turns false at SIGTERM, so a load balancer stops sending
traffic to an instance that cannot serve it or is about to stop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable

from fastapi import APIRouter, Response
from pydantic import BaseModel

from skilltree.platform import migrations
from skilltree.platform.draining import is_draining
from skilltree.platform.http.problems import problem_response, problem_responses
from skilltree.platform.observability import metrics
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.state import AppResources

READINESS_TIMEOUT_SECONDS = 2.0
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(tags=["health"])
log = get_logger("skilltree.health")


class Liveness(BaseModel):
    status: str = "ok"


class Startup(BaseModel):
    status: str = "started"
    schema_revision: str | None


class Readiness(BaseModel):
    status: str = "ready"
    checks: dict[str, str]


@router.get("/livez", response_model=Liveness)
async def livez(response: Response) -> Liveness:
    """The process is up and its event loop answers."""
    response.headers.update(NO_STORE)
    return Liveness()


@router.get("/startupz", response_model=Startup, responses=problem_responses(503))
async def startupz(resources: AppResources, response: Response) -> Startup | Response:
    """The instance has started: its database answers and its schema is at the newest
    migration this code knows, or at a newer release's."""
    expected = _head_revision()
    try:
        current = await asyncio.wait_for(
            migrations.current_revision(resources.database.engine), READINESS_TIMEOUT_SECONDS
        )
    except Exception as error:  # whatever the failure, the instance has not started
        log.warning("startup check failed", check="database", error=type(error).__name__)
        return _not_started("The database is not reachable.")
    # A revision this code does not know is a newer release's, migrated first in a rolling
    # deployment: its migrations keep the schema usable by this release (docs/migrations.md).
    if current != expected and (current is None or current in _known_revisions()):
        return _not_started(
            f"The database schema is at revision {current or 'none'}; this version needs "
            f"{expected}. Run `skilltree migrate upgrade`."
        )
    response.headers.update(NO_STORE)
    return Startup(schema_revision=current)


def _not_started(detail: str) -> Response:
    return problem_response(
        503, title="Not started", type_="/problems/not-started", detail=detail, headers=NO_STORE
    )


@functools.cache
def _head_revision() -> str | None:
    # Read from the migration scripts once: they do not change while the process runs.
    return migrations.head_revision()


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(migrations.known_revisions())


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(resources: AppResources, response: Response) -> Readiness | Response:
    """The instance can serve requests: its database (and Redis, when configured) answer
    within the timeout."""
    if is_draining():
        metrics.READY.set(0)
        # SIGTERM arrived: out of rotation at once, whatever the dependencies say.
        return problem_response(
            503,
            title="Not ready",
            type_="/problems/not-ready",
            detail="Shutting down: finishing the requests in flight.",
            headers=NO_STORE,
            checks={"shutdown": "draining"},
        )
    checks = {"database": await _check("database", resources.database.ping())}
    if resources.redis is not None:
        checks["redis"] = await _check("redis", resources.redis.ping())
    failing = sorted(name for name, state in checks.items() if state != "ok")
    metrics.READY.set(0 if failing else 1)
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
