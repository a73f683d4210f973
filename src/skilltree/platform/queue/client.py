"""The queue as the rest of skilltree sees it: publish a task by name, with a JSON payload.

taskiq and the broker's client (aio-pika for RabbitMQ) load when the queue is first started or
published to, not when it is built: a web worker builds a queue in every lifespan but publishes
only when it hands work on itself (e-mail over SMTP), and a worker that never does should not
carry the libraries (docs/performance.md, "What a worker loads").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from skilltree.platform.clock import Clock
from skilltree.platform.config import QueueSettings
from skilltree.platform.db import Database

if TYPE_CHECKING:
    from taskiq import AsyncBroker


class TaskQueue:
    """Owns the broker connection of one process; created by a lifespan, closed at its end.

    The broker is built from `make_broker` the first time it is needed."""

    def __init__(self, make_broker: Callable[[], AsyncBroker]) -> None:
        self._make_broker = make_broker
        self._started = False

    @cached_property
    def broker(self) -> AsyncBroker:
        return self._make_broker()

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
        from taskiq import TaskiqMessage  # with the first message, like the broker

        await self.start()
        message = TaskiqMessage(
            task_id=task_id, task_name=task_name, labels=labels, args=args, kwargs={}
        )
        await self.broker.kick(self.broker.formatter.dumps(message))


def build_broker(settings: QueueSettings, database: Database, clock: Clock) -> AsyncBroker:
    # Each broker's module imports taskiq and its client library: only the configured one loads.
    if settings.broker == "rabbitmq":
        from taskiq_aio_pika import Exchange, Queue

        from skilltree.platform.queue.rabbitmq_broker import RabbitMQBroker

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
    from skilltree.platform.queue.database_broker import DatabaseBroker

    return DatabaseBroker(
        database,
        clock,
        queue=settings.name,
        lease_seconds=settings.lease_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
    )


def build_queue(settings: QueueSettings, database: Database, clock: Clock) -> TaskQueue:
    """The queue of one process; its broker is built when first used (see the module's note)."""
    return TaskQueue(partial(build_broker, settings, database, clock))
