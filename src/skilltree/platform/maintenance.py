"""Scheduled clean-up: expired sessions and tokens, old outbox rows, dedupe marks and ticks.

Domains add their own clean-ups with `@cleanup("name")` (accounts removes expired sessions and
tokens) and platform mechanisms register theirs here (expired idempotency keys), so one job,
in one transaction per clean-up, keeps every table from growing without bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.platform.http import idempotency
from skilltree.platform.queue import outbox
from skilltree.platform.queue.scheduler import cron_task, forget_runs_before
from skilltree.platform.queue.tasks import Job, Payload

log = structlog.get_logger(__name__)

# A clean-up deletes what is no longer needed as of `now`, and returns how many rows it removed.
Cleanup = Callable[[AsyncSession, datetime], Awaitable[int]]
CLEANUPS: dict[str, Cleanup] = {}
CLEANUP_JOB = "maintenance.cleanup"


def add_cleanup(name: str, function: Cleanup) -> None:
    CLEANUPS[name] = function


def cleanup(name: str) -> Callable[[Cleanup], Cleanup]:
    """`add_cleanup` as a decorator, for the platform's own clean-ups."""

    def register(function: Cleanup) -> Cleanup:
        add_cleanup(name, function)
        return function

    return register


@cron_task(CLEANUP_JOB, "*/15 * * * *")
async def run_cleanups(job: Job, payload: Payload) -> None:
    """Each clean-up in its own transaction: one failing does not undo the others' work."""
    now = job.resources.clock.now()
    for name, function in CLEANUPS.items():
        async with job.resources.database.unit_of_work() as session:
            removed = await function(session, now)
        log.info("maintenance.cleaned", cleanup=name, removed=removed)


# Duplicates arrive within minutes or hours of the original; a week of history is plenty.
RETENTION = timedelta(days=7)


@cleanup("outbox")
async def _published_outbox_rows(session: AsyncSession, now: datetime) -> int:
    return await outbox.delete_published_before(session, now - RETENTION)


@cleanup("processed-events")
async def _processed_events(session: AsyncSession, now: datetime) -> int:
    return await events.forget_processed_before(session, now - RETENTION)


# Idempotency keys past their TTL can no longer be replayed (platform/http/idempotency.py).
cleanup("idempotency-keys")(idempotency.delete_expired_keys)


@cleanup("scheduled-runs")
async def _scheduled_runs(session: AsyncSession, now: datetime) -> int:
    return await forget_runs_before(session, now - RETENTION)
