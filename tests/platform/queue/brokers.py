"""What the queue tests need to see inside either broker: how many messages it still holds, a
worker that takes a message and dies before acknowledging it, and a worker that counts the
deliveries it acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from sqlalchemy import func, select
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from skilltree.platform.clock import Clock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.database_broker import DatabaseBroker
from skilltree.platform.queue.deliveries import label_delivery
from skilltree.platform.queue.models import OutboxMessage, QueuedTask
from skilltree.platform.queue.worker import run_worker
from tests.support.background import PATIENCE_SECONDS, MovableClock, make_resources

BROKERS = ["database", "rabbitmq"]


async def messages_held(settings: Settings, database: Database) -> int:
    """Messages the broker still holds, ready or handed out and not acknowledged.

    Ask only once every worker has stopped: RabbitMQ counts a message handed to a consumer only
    after that consumer's channel closes and the message is put back.
    """
    if settings.queue.broker == "database":
        async with database.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(QueuedTask)) or 0)
    return await _rabbitmq_ready_messages(settings)


async def _rabbitmq_ready_messages(settings: Settings) -> int:
    connection = await aio_pika.connect(settings.queue.rabbitmq_url.get_secret_value(), timeout=5)
    async with connection:
        channel = await connection.channel()
        deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
        while True:
            queue = await channel.declare_queue(settings.queue.name, passive=True)
            declared = queue.declaration_result
            # A consumer still attached holds its unacknowledged messages out of the count;
            # once it is gone, they are back in it.
            if declared.consumer_count == 0:
                return int(declared.message_count or 0)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{declared.consumer_count} consumers still attached")
            await asyncio.sleep(0.05)


async def everything_published(database: Database) -> bool:
    """Every outbox row, delayed retries included, has been handed to the broker."""
    async with database.unit_of_work() as session:
        unpublished = await session.scalar(
            select(func.count()).where(OutboxMessage.published_at.is_(None))
        )
        return not unpublished


async def take_and_die(
    settings: Settings, database: Database, clock: MovableClock
) -> TaskiqMessage:
    """A worker takes the next message and is killed before acknowledging it; returns the
    message as that worker saw it (its `delivery` label counts the deliveries so far).

    On the database broker nothing deletes the leased row and the lease runs out (the clock
    moves past it); on RabbitMQ the dead worker's connection closes and the broker puts the
    message back.
    """
    _resources, doomed = make_resources(settings, database, clock)
    if isinstance(doomed.broker, DatabaseBroker):
        claimed = await doomed.broker.claim()
        assert claimed is not None, "no message to take"
        clock.advance(seconds=settings.queue.lease_seconds + 1)
        data = label_delivery(doomed.broker.formatter, claimed.message, claimed.deliveries)
        return TaskiqMessage.model_validate_json(data)
    doomed.broker.is_worker_process = True
    await doomed.start()
    taken = await anext(doomed.broker.listen())
    await doomed.close()
    return TaskiqMessage.model_validate_json(taken.data)


class AcknowledgedDeliveries(TaskiqMiddleware):
    """Records the task id of every delivery the worker finished and acknowledged (taskiq calls
    `post_execute` after the acknowledgement), duplicates included."""

    def __init__(self) -> None:
        super().__init__()
        self.task_ids: list[str] = []

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        self.task_ids.append(message.task_id)


@asynccontextmanager
async def counting_worker(
    settings: Settings, database: Database, *, relay: bool = True, clock: Clock | None = None
) -> AsyncIterator[list[str]]:
    """A worker running in the background, like `running_worker`; yields the task ids of the
    deliveries it has acknowledged so far, so a test can wait for the last one it expects
    instead of sleeping and hoping no other comes."""
    resources, queue = make_resources(settings, database, clock)
    acknowledged = AcknowledgedDeliveries()
    queue.broker.add_middlewares(acknowledged)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(resources, queue, stop, relay=relay))
    try:
        yield acknowledged.task_ids
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=PATIENCE_SECONDS)
