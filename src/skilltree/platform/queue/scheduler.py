"""Cron-style jobs that run once per tick, however many scheduler processes are running.

Each job has a cron expression (UTC). Every few seconds a scheduler works out each job's most
recent tick and tries to claim it by inserting (job, tick) into `scheduled_runs`, in the same
transaction as the outbox row that queues the job's task. The primary key is the lock: when
two schedulers race, one insert commits and the other fails, so the task is queued exactly once
per tick; the claim and the queued task commit together, so a scheduler that dies halfway
leaves neither. After downtime only the latest missed tick runs, once (no pile of catch-ups).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from cronsim import CronSim, CronSimError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import Clock
from skilltree.platform.db import Database
from skilltree.platform.queue import outbox
from skilltree.platform.queue.lifecycle import pause
from skilltree.platform.queue.models import ScheduledRun
from skilltree.platform.queue.retry import RetryPolicy
from skilltree.platform.queue.tasks import Handler, task

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CronJob:
    name: str  # also the name of the task it queues
    schedule: str

    def latest_tick(self, now: datetime) -> datetime:
        """The most recent scheduled time at or before `now`."""
        # Reverse iteration starts strictly before its start: one microsecond past `now`
        # makes a tick at exactly `now` count.
        start = now.replace(microsecond=0) + timedelta(microseconds=1)
        return next(CronSim(self.schedule, start, reverse=True))


SCHEDULE: dict[str, CronJob] = {}


def cron_task(
    name: str, schedule: str, *, retry: RetryPolicy | None = None, timeout_seconds: float = 240.0
) -> Callable[[Handler], Handler]:
    """Declare a task and run it on a cron schedule, e.g. `@cron_task("digest", "0 8 * * 1")`."""
    try:
        CronSim(schedule, datetime(2000, 1, 1))
    except CronSimError as error:
        raise ValueError(f"job {name!r}: bad cron expression {schedule!r}: {error}") from error

    def register(handler: Handler) -> Handler:
        SCHEDULE[name] = CronJob(name, schedule)
        return task(name, retry=retry, timeout_seconds=timeout_seconds)(handler)

    return register


class Scheduler:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        instance: str,
        interval_seconds: float,
        jobs: dict[str, CronJob] | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.instance = instance
        self.interval = interval_seconds
        self.jobs = SCHEDULE if jobs is None else jobs

    async def run(self, stop: asyncio.Event) -> None:
        log.info("scheduler.started", instance=self.instance, jobs=sorted(self.jobs))
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler.tick_failed")
            await pause(stop, self.interval)
        log.info("scheduler.stopped", instance=self.instance)

    async def tick(self) -> list[tuple[str, datetime]]:
        """Claim and queue every job whose latest tick no scheduler has claimed yet; returns
        the ticks this instance claimed."""
        now = self.clock.now()
        claimed = []
        for job in self.jobs.values():
            tick_at = job.latest_tick(now)
            if await self._claim(job, tick_at, now):
                claimed.append((job.name, tick_at))
                log.info("scheduler.tick_claimed", job=job.name, tick=tick_at.isoformat())
        return claimed

    async def _claim(self, job: CronJob, tick_at: datetime, now: datetime) -> bool:
        try:
            async with self.database.unit_of_work() as session:
                session.add(
                    ScheduledRun(
                        job=job.name, tick_at=tick_at, claimed_by=self.instance, claimed_at=now
                    )
                )
                await session.flush()
                outbox.enqueue(
                    session,
                    job.name,
                    {"tick": tick_at.isoformat()},
                    now=now,
                    # The same id for the same tick: even a duplicate would be recognisable.
                    message_id=f"{job.name}@{tick_at.isoformat()}",
                )
        except IntegrityError:
            return False  # another scheduler claimed this tick first
        return True


async def forget_runs_before(session: AsyncSession, cutoff: datetime) -> int:
    """Clean-up: only the latest tick of each job matters for claiming."""
    result = await session.execute(delete(ScheduledRun).where(ScheduledRun.tick_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
