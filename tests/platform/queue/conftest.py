"""Every queue, outbox and crash test here runs on both brokers: the database broker (the
embedded default) and RabbitMQ (production). A test that only one broker passes is a test of
that broker, not of the queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from skilltree.platform.config import Settings
from tests.platform.queue.brokers import BROKERS
from tests.support.background import fast_queue_settings
from tests.support.services import RABBITMQ_URL, delete_queues, require_rabbitmq


@pytest.fixture(params=BROKERS)
async def bg_settings(
    request: pytest.FixtureRequest, bg_settings: Settings
) -> AsyncIterator[Settings]:
    """The background settings on each broker in turn; RabbitMQ gets a throwaway queue."""
    if request.param == "database":
        yield bg_settings
        return
    await require_rabbitmq()
    name = f"skilltree-test-{uuid.uuid4().hex[:8]}"
    queue = fast_queue_settings(broker="rabbitmq", rabbitmq_url=RABBITMQ_URL, name=name)
    yield bg_settings.model_copy(update={"queue": queue})
    await delete_queues(name, f"{name}.rejected")
