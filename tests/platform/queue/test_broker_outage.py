"""A worker whose RabbitMQ connection drops (a broker restart, a network cut) resumes taking
tasks by itself once the broker is reachable again, without a restart of the worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.config import AppSettings, DatabaseSettings, MailSettings, Settings
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
from tests.support.tcp_proxy import TcpProxy

# An outage long enough for the worker to notice its connection is gone.
OUTAGE_SECONDS = 2.0
# How long a worker may take to be back once the broker is: aio-pika retries every 5 s, and a
# loaded CI machine makes each attempt slow.
RESUMES_WITHIN_SECONDS = 60.0


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of RabbitMQ, which the test cuts; and a throwaway queue name."""
    await require_rabbitmq()
    target = urlsplit(RABBITMQ_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    name = f"skilltree-test-{uuid.uuid4().hex[:8]}"
    try:
        yield proxy, name
    finally:
        await proxy.stop()
        await delete_queues(name, f"{name}.rejected")


def _on_rabbitmq(engine: AsyncEngine, tmp_path: Path, url: str, name: str) -> Settings:
    return Settings(
        app=AppSettings(env="test"),
        database=DatabaseSettings(url=engine.url.render_as_string(hide_password=False)),
        mail=MailSettings(outbox_dir=tmp_path / "outbox"),
        queue=fast_queue_settings(broker="rabbitmq", rabbitmq_url=url, name=name),
    )


# RabbitMQ only: for the database broker, a broker outage is a database outage
# (docs/reliability.md, "PostgreSQL restarted under load").
async def test_a_worker_resumes_by_itself_after_its_broker_connection_drops(
    engine: AsyncEngine, bg_database: Database, tmp_path: Path, proxied: tuple[TcpProxy, str]
) -> None:
    proxy, name = proxied
    through_proxy = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    worker_settings = _on_rabbitmq(engine, tmp_path, through_proxy, name)
    # The publisher reaches RabbitMQ directly: only the worker's connection is cut.
    direct = _on_rabbitmq(engine, tmp_path, RABBITMQ_URL, name)
    seen: list[int] = []
    second_ran = asyncio.Event()

    async def remember(job: Job, payload: Payload) -> None:
        seen.append(payload["n"])
        if payload["n"] == 2:
            second_ran.set()

    _resources, publisher = make_resources(direct, bg_database)
    with temporary_task("test.outage", remember):
        async with running_worker(worker_settings, bg_database, relay=False):
            await publisher.publish("test.outage", [{"n": 1}], task_id="o1", labels={"attempt": 1})
            await eventually(lambda: _true(seen == [1]), "the task before the outage")

            await proxy.stop()
            await asyncio.sleep(OUTAGE_SECONDS)
            await proxy.start()
            back_at = time.monotonic()
            await publisher.publish("test.outage", [{"n": 2}], task_id="o2", labels={"attempt": 1})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second_ran.wait(), timeout=RESUMES_WITHIN_SECONDS)
            resumed_after = time.monotonic() - back_at
    await publisher.close()

    assert second_ran.is_set(), f"no task ran in the {resumed_after:.0f} s after the outage"
    # The first task's acknowledgement may still be on its way when the connection is cut:
    # RabbitMQ then hands that task out again once the worker is back, as running a task is
    # at-least-once (docs/background-work.md). The second, published after the outage, ran once.
    assert seen.count(2) == 1, seen
    assert set(seen) == {1, 2}, seen


async def _true(value: bool) -> bool:
    return value
