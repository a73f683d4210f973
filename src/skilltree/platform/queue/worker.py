"""The worker process: runs queued tasks, retries failures, dead-letters the hopeless.

Delivery is at-least-once: a message is acknowledged only after its task returned, or after
its failure was durably turned into a retry or a dead letter. A worker killed at any moment
leaves its messages unacknowledged, and the broker (or the database lease) hands them out again.
Each delivery is one attempt, whether it ended in an exception or in a dead worker, so a task
that kills every worker that runs it is dead-lettered once its attempts are spent.

On SIGTERM the worker stops taking messages, lets running tasks finish for up to the grace
period, and exits; whatever did not finish is redelivered to another worker.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import structlog
from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqMessage, TaskiqMiddleware
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq.result import TaskiqResult

from skilltree.platform.clock import Clock
from skilltree.platform.db import Database
from skilltree.platform.observability.tracing import task_span
from skilltree.platform.queue import dead_letters, outbox
from skilltree.platform.queue.client import TaskQueue
from skilltree.platform.queue.deliveries import attempt_of, unfinished_deliveries
from skilltree.platform.queue.outbox import Relay
from skilltree.platform.queue.retry import PermanentFailure, RetryPolicy
from skilltree.platform.queue.tasks import REGISTRY, Job, TaskSpec
from skilltree.platform.state import Resources

log = structlog.get_logger(__name__)


class AttemptsSpent(PermanentFailure):
    """Raised instead of running a task whose attempts ran out in deliveries that never
    finished: the worker running it died each time, and would most likely die again."""

    def __init__(self, unfinished: int) -> None:
        times = "once" if unfinished == 1 else f"{unfinished} times"
        super().__init__(
            f"delivered {times} without finishing: the worker running it died "
            "(killed, out of memory, crashed) before it could succeed or fail"
        )


class RetryMiddleware(TaskiqMiddleware):
    """Turns a failed attempt into a delayed retry, or into a dead letter when the task's
    attempts are spent or the failure is permanent."""

    def __init__(self, database: Database, clock: Clock) -> None:
        super().__init__()
        self.database = database
        self.clock = clock

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        spec = REGISTRY.get(message.task_name)
        policy = spec.retry if spec else RetryPolicy(max_attempts=1)
        attempt = attempt_of(message)
        # A task refused for its spent attempts did not make this one.
        attempts_made = attempt - 1 if isinstance(exception, AttemptsSpent) else attempt
        now = self.clock.now()
        gives_up = isinstance(exception, PermanentFailure) or attempt >= policy.max_attempts
        # If this write fails the message stays unacknowledged and is delivered again.
        async with self.database.unit_of_work() as session:
            if gives_up:
                dead_letters.record(
                    session,
                    task_id=message.task_id,
                    task_name=message.task_name,
                    args=message.args,
                    labels=message.labels,
                    attempts=attempts_made,
                    error=exception,
                    now=now,
                )
            else:
                delay = policy.delay_before(attempt + 1)
                outbox.enqueue(
                    session,
                    message.task_name,
                    message.args[0] if message.args else {},
                    now=now,
                    delay_seconds=delay,
                    attempt=attempt + 1,
                )
        event = "task.dead_lettered" if gives_up else "task.retry_scheduled"
        log.warning(
            event,
            task=message.task_name,
            task_id=message.task_id,
            attempt=attempt,
            error=f"{type(exception).__name__}: {exception}",
        )


def register_tasks(broker: AsyncBroker, resources: Resources) -> None:
    for spec in REGISTRY.values():
        broker.register_task(
            _runner(spec, resources), task_name=spec.name, timeout=spec.timeout_seconds
        )


def _runner(spec: TaskSpec, resources: Resources) -> Any:
    async def run(payload: dict[str, Any], context: Annotated[Context, TaskiqDepends()]) -> None:
        message = context.message
        attempt = attempt_of(message)
        unfinished = unfinished_deliveries(message)
        if unfinished and attempt > spec.retry.max_attempts:
            raise AttemptsSpent(unfinished)
        job = Job(
            resources=resources,
            task_id=message.task_id,
            attempt=attempt,
            max_attempts=spec.retry.max_attempts,
        )
        with task_span(spec.name, message.labels):
            await spec.handler(job, payload)

    return run


async def run_worker(
    resources: Resources, queue: TaskQueue, stop: asyncio.Event, *, relay: bool = True
) -> None:
    """Run tasks (and, unless told otherwise, the outbox relay) until `stop` is set."""
    settings = resources.settings.queue
    broker = queue.broker
    broker.is_worker_process = True
    register_tasks(broker, resources)
    broker.add_middlewares(RetryMiddleware(resources.database, resources.clock))
    await queue.start()
    receiver = Receiver(
        broker,
        max_async_tasks=settings.concurrency,
        ack_type=AcknowledgeType.WHEN_EXECUTED,
        wait_tasks_timeout=settings.shutdown_grace_seconds,
        run_startup=False,
    )
    loops = [receiver.listen(stop)]
    if relay:
        loops.append(relay_for(resources, queue).run(stop))
    log.info("worker.started", broker=settings.broker, queue=settings.name, relay=relay)
    try:
        await asyncio.gather(*loops)
    finally:
        await queue.close()
    log.info("worker.stopped")


def relay_for(resources: Resources, queue: TaskQueue) -> Relay:
    settings = resources.settings.queue
    return Relay(
        resources.database,
        queue,
        resources.clock,
        batch_size=settings.relay_batch_size,
        poll_interval_seconds=settings.poll_interval_seconds,
    )
