"""Running the background machinery inside a test: a migrated database of its own (workers,
relays and schedulers open many connections, which a rolled-back test transaction cannot
share), throwaway tasks, and a worker that runs until told to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.cache import Cache
from skilltree.platform.clock import Clock, SystemClock
from skilltree.platform.config import QueueSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.client import TaskQueue, build_queue
from skilltree.platform.queue.models import (
    DeadLetter,
    OutboxMessage,
    ProcessedEvent,
    QueuedTask,
    ScheduledRun,
)
from skilltree.platform.queue.retry import RetryPolicy
from skilltree.platform.queue.tasks import REGISTRY, Handler, task
from skilltree.platform.queue.worker import relay_for, run_worker
from skilltree.platform.state import Resources
from skilltree.platform.transactional_mail import transactional_mailer

BACKGROUND_TABLES = (QueuedTask, OutboxMessage, DeadLetter, ProcessedEvent, ScheduledRun)
# Every wait in these tests is bounded by this.
PATIENCE_SECONDS = 20.0


async def empty_background_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for model in BACKGROUND_TABLES:
            await connection.execute(delete(model))


def fast_queue_settings(**overrides: object) -> QueueSettings:
    values: dict[str, object] = {
        "poll_interval_seconds": 0.02,
        "lease_seconds": 30.0,
        "shutdown_grace_seconds": 5.0,
        "concurrency": 2,
    }
    values.update(overrides)
    return QueueSettings.model_validate(values)


class MovableClock:
    """Real time plus an offset a test moves forward: a lease lapses without waiting for it,
    while back-off delays still pass on their own."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def make_resources(
    settings: Settings, database: Database, clock: Clock | None = None
) -> tuple[Resources, TaskQueue]:
    used_clock = clock or SystemClock()
    queue = build_queue(settings.queue, database, used_clock)
    resources = Resources(
        settings=settings,
        database=database,
        clock=used_clock,
        mailer=transactional_mailer(settings.mail, database, used_clock, queue),
        queue=queue,
        cache=Cache.from_settings(settings.cache, settings.redis),
    )
    return resources, queue


@contextmanager
def temporary_task(
    name: str, handler: Handler, retry: RetryPolicy | None = None, timeout_seconds: float = 30
) -> Iterator[None]:
    task(name, retry=retry, timeout_seconds=timeout_seconds)(handler)
    try:
        yield
    finally:
        REGISTRY.pop(name, None)


@asynccontextmanager
async def running_worker(
    settings: Settings, database: Database, *, relay: bool = True, clock: Clock | None = None
) -> AsyncIterator[asyncio.Event]:
    """A worker (own broker connection) running in the background; yields its stop event."""
    resources, queue = make_resources(settings, database, clock)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(resources, queue, stop, relay=relay))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=PATIENCE_SECONDS)


@asynccontextmanager
async def running_relay(settings: Settings, database: Database) -> AsyncIterator[None]:
    resources, queue = make_resources(settings, database)
    stop = asyncio.Event()
    relay = asyncio.create_task(relay_for(resources, queue).run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(relay, timeout=PATIENCE_SECONDS)
        await queue.close()


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (bounded) until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def nothing_left_to_run(database: Database) -> bool:
    """Every outbox message is handed on and every queued task acknowledged: from here on no
    worker or relay has anything to do, so "nothing more happened" can be checked."""
    async with database.unit_of_work() as session:
        unpublished = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None))
        )
        queued = await session.scalar(select(func.count()).select_from(QueuedTask))
    return unpublished == 0 and queued == 0


async def handed_on(database: Database) -> bool:
    """Every outbox message is handed to the broker (published), run or not."""
    async with database.unit_of_work() as session:
        unpublished = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None))
        )
    return unpublished == 0


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory}/background.db"


async def only_dead_letter(database: Database) -> DeadLetter:
    """The one dead letter a test expects (fails if there are none or several)."""
    async with database.unit_of_work() as session:
        return (await session.scalars(select(DeadLetter))).one()


class ProcessKilled(BaseException):
    """A process dying mid-operation (as kill -9 would), raised where the death happens.

    Like SystemExit, it is a BaseException, so no `except Exception` in the code under test
    treats it as an error it could recover from. Unlike SystemExit, asyncio and the test
    runner's worker processes do not take it as a request to end the process itself, which a
    SystemExit raised inside the test's event loop may be."""
