"""Reaching the RabbitMQ server the production tests need.

Like PostgreSQL (databases.py): outside CI an unreachable server skips the tests with the
reason; with CI=true it fails them, because a suite that silently skips its broker has not
tested it.
"""

from __future__ import annotations

import os

import aio_pika
import pytest

from tests.support.databases import IN_CI

RABBITMQ_URL = os.environ.get("SKILLTREE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def require_rabbitmq() -> None:
    try:
        connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as error:
        reason = f"RabbitMQ unreachable at 127.0.0.1:5672: {error!r}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: RabbitMQ tests must run)", pytrace=False)
        pytest.skip(f"{reason}; set SKILLTREE_TEST_RABBITMQ_URL or start RabbitMQ")
    await connection.close()


async def delete_queues(*names: str) -> None:
    """Tests use throwaway queue names; durable quorum queues outlive the test otherwise."""
    connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)
            await channel.exchange_delete(name)
