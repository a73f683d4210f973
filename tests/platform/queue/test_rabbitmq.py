"""The production broker, for real: RabbitMQ at 127.0.0.1:5672 (fails loudly in CI when absent)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from taskiq import TaskiqMessage

from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.models import DeadLetter
from skilltree.platform.queue.retry import RetryPolicy
from skilltree.platform.queue.tasks import Job, Payload
from tests.support.background import (
    eventually,
    fast_queue_settings,
    make_resources,
    only_dead_letter,
    running_worker,
    temporary_task,
)
from tests.support.services import RABBITMQ_URL, delete_queues, require_rabbitmq


@pytest.fixture
async def rabbit_settings(bg_settings: Settings) -> AsyncIterator[Settings]:
    await require_rabbitmq()
    name = f"skilltree-test-{uuid.uuid4().hex[:8]}"
    queue = fast_queue_settings(broker="rabbitmq", rabbitmq_url=RABBITMQ_URL, name=name)
    yield bg_settings.model_copy(update={"queue": queue})
    await delete_queues(name, f"{name}.rejected")


async def test_a_task_published_to_rabbitmq_runs_on_a_worker(
    bg_database: Database, rabbit_settings: Settings
) -> None:
    seen: list[Payload] = []

    async def remember(job: Job, payload: Payload) -> None:
        seen.append(payload)

    _resources, queue = make_resources(rabbit_settings, bg_database)
    with temporary_task("test.rabbit", remember):
        async with running_worker(rabbit_settings, bg_database, relay=False):
            await queue.publish("test.rabbit", [{"n": 1}], task_id="t1", labels={"attempt": 1})
            await eventually(lambda: _true(seen == [{"n": 1}]), "the task to run")
    await queue.close()


async def test_a_message_taken_but_never_acknowledged_is_redelivered(
    bg_database: Database, rabbit_settings: Settings
) -> None:
    seen: list[Payload] = []

    async def remember(job: Job, payload: Payload) -> None:
        seen.append(payload)

    _resources, queue = make_resources(rabbit_settings, bg_database)
    await queue.publish("test.rabbit", [{"n": 2}], task_id="t2", labels={"attempt": 1})
    # A worker takes the message and dies before acknowledging it: its connection closes.
    _crashed_resources, crashed = make_resources(rabbit_settings, bg_database)
    crashed.broker.is_worker_process = True
    await crashed.start()
    taken = await anext(crashed.broker.listen())
    assert TaskiqMessage.model_validate_json(taken.data).args == [{"n": 2}]
    await crashed.close()

    with temporary_task("test.rabbit", remember):
        async with running_worker(rabbit_settings, bg_database, relay=False):
            await eventually(lambda: _true(seen == [{"n": 2}]), "the redelivered task")
    await queue.close()


async def take_and_die(settings: Settings, database: Database) -> TaskiqMessage:
    """A worker takes the next message and dies before acknowledging it: its connection closes
    and RabbitMQ puts the message back."""
    _resources, doomed = make_resources(settings, database)
    doomed.broker.is_worker_process = True
    await doomed.start()
    taken = await anext(doomed.broker.listen())
    await doomed.close()
    return TaskiqMessage.model_validate_json(taken.data)


async def test_a_message_whose_worker_dies_every_time_is_dead_lettered_after_its_attempts(
    bg_database: Database, rabbit_settings: Settings
) -> None:
    runs: list[int] = []

    async def poison(job: Job, payload: Payload) -> None:
        runs.append(job.attempt)

    _resources, queue = make_resources(rabbit_settings, bg_database)
    await queue.publish("test.poison", [{"n": 3}], task_id="t3", labels={"attempt": 1})
    for death in range(3):
        taken = await take_and_die(rabbit_settings, bg_database)
        # The quorum queue's x-delivery-count, as the worker sees it.
        assert (taken.task_id, taken.labels["delivery"]) == ("t3", death + 1)

    with temporary_task("test.poison", poison, retry=RetryPolicy(max_attempts=3)):
        async with running_worker(rabbit_settings, bg_database, relay=False):
            await eventually(lambda: _has_dead_letter(bg_database), "a dead letter")
    await queue.close()

    assert runs == []  # the fourth delivery is not run: its three attempts were spent
    letter = await only_dead_letter(bg_database)
    assert (letter.task_id, letter.attempts) == ("t3", 3)
    assert "delivered 3 times without finishing" in letter.error


async def _has_dead_letter(database: Database) -> bool:
    async with database.unit_of_work() as session:
        return (await session.scalars(select(DeadLetter))).first() is not None


async def _true(value: bool) -> bool:
    return value
