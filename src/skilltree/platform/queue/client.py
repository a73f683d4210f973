"""The queue as the rest of skilltree sees it: publish a task by name, with a JSON payload."""

from __future__ import annotations

from typing import Any

from taskiq import AsyncBroker, TaskiqMessage
from taskiq_aio_pika import Exchange, Queue

from skilltree.platform.clock import Clock
from skilltree.platform.config import QueueSettings
from skilltree.platform.db import Database
from skilltree.platform.queue.database_broker import DatabaseBroker
from skilltree.platform.queue.rabbitmq_broker import RabbitMQBroker


class TaskQueue:
    """Owns the broker connection of one process; created by a lifespan, closed at its end."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self.broker.startup()
            self._started = True

    async def close(self) -> None:
        if self._started:
            await self.broker.shutdown()
            self._started = False

    async def publish(
        self, task_name: str, args: list[Any], *, task_id: str, labels: dict[str, Any]
    ) -> None:
        """Hand one message to the broker; returns once the broker has it (RabbitMQ publisher
        confirms, or the database commit)."""
        await self.start()
        message = TaskiqMessage(
            task_id=task_id, task_name=task_name, labels=labels, args=args, kwargs={}
        )
        await self.broker.kick(self.broker.formatter.dumps(message))


def build_broker(settings: QueueSettings, database: Database, clock: Clock) -> AsyncBroker:
    if settings.broker == "rabbitmq":
        return RabbitMQBroker(
            url=settings.rabbitmq_url.get_secret_value(),
            # Prefetch no more than the worker runs at once: a message waiting in one worker's
            # buffer is a message another, idle worker cannot take.
            qos=settings.concurrency,
            exchange=Exchange(name=settings.name),
            # Quorum queues (the default) replicate and fsync: a published task survives a
            # broker restart. They also count redeliveries, which poison tasks need.
            task_queues=[Queue(name=settings.name)],
            dead_letter_queue=Queue(name=f"{settings.name}.rejected"),
        )
    return DatabaseBroker(
        database,
        clock,
        queue=settings.name,
        lease_seconds=settings.lease_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
    )


def build_queue(settings: QueueSettings, database: Database, clock: Clock) -> TaskQueue:
    return TaskQueue(build_broker(settings, database, clock))
