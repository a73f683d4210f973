"""The production broker, for real: RabbitMQ at 127.0.0.1:5672 (fails loudly in CI when absent)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from taskiq import TaskiqMessage

from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.tasks import Job, Payload
from tests.support.background import (
    eventually,
    fast_queue_settings,
    make_resources,
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


async def _true(value: bool) -> bool:
    return value
