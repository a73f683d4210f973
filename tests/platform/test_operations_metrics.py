"""The metrics the alert rules watch: backlog, readiness, the database pool, and the business
counters, read from `GET /metrics` as Prometheus reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database
from skilltree.platform.draining import begin_draining, reset_draining
from skilltree.platform.fair_pool import FairQueuePool
from skilltree.platform.queue import dead_letters, outbox
from skilltree.platform.queue.models import QueuedTask
from tests.support.accounts import Browser
from tests.support.databases import temporary_postgres_database
from tests.support.metrics import sample
from tests.support.progress import WEB, People, import_roadmap, mark


async def test_the_outbox_lag_is_the_age_of_the_oldest_due_message(
    client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    pending = await sample(client, "skilltree_outbox_pending_messages")
    outbox.enqueue(session, "notifications.send", {}, now=clock.now() - timedelta(minutes=3))
    outbox.enqueue(session, "notifications.send", {}, now=clock.now(), delay_seconds=3600)
    await session.flush()

    assert await sample(client, "skilltree_outbox_lag_seconds") == 180.0
    # the delayed message is not due yet: it is not lagging
    assert await sample(client, "skilltree_outbox_pending_messages") == pending + 1


async def test_queue_depth_and_the_age_of_the_oldest_runnable_task(
    client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    waiting = QueuedTask(
        queue="skilltree", task_id="t1", task_name="x", message=b"{}",
        enqueued_at=now - timedelta(minutes=10), available_at=now - timedelta(minutes=10),
    )  # fmt: skip
    running = QueuedTask(
        queue="skilltree", task_id="t2", task_name="x", message=b"{}",
        enqueued_at=now - timedelta(hours=1), available_at=now - timedelta(hours=1),
        leased_until=now + timedelta(minutes=5), lease_token="held",
    )  # fmt: skip
    session.add_all([waiting, running])
    await session.flush()

    assert await sample(client, "skilltree_queue_depth") >= 2
    # the task a worker holds is running, not waiting
    assert await sample(client, "skilltree_queue_oldest_task_age_seconds") == 600.0


async def test_dead_letters_are_counted(
    client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    before = await sample(client, "skilltree_dead_letters")
    dead_letters.record(
        session, task_id="t", task_name="x", args=[{}], labels={}, attempts=5,
        error=RuntimeError("gone"), now=clock.now(),
    )  # fmt: skip
    await session.flush()

    assert await sample(client, "skilltree_dead_letters") == before + 1


@pytest.fixture
def draining() -> Iterator[None]:
    begin_draining()
    yield
    reset_draining()


async def test_readiness_is_a_gauge_that_drops_while_draining(
    client: httpx.AsyncClient, request: pytest.FixtureRequest
) -> None:
    await client.get("/readyz")
    ready = await sample(client, "skilltree_ready")
    request.getfixturevalue("draining")
    await client.get("/readyz")

    assert ready == 1.0
    assert await sample(client, "skilltree_ready") == 0.0


async def test_sign_ups_and_completed_topics_are_counted(
    client: httpx.AsyncClient, people: People
) -> None:
    signups = await sample(client, "skilltree_signups_total", via="registration")
    done = await sample(client, "skilltree_topics_completed_total")

    learner: Browser = await people("Grace")
    await import_roadmap(learner, WEB)
    assert (await mark(learner, "indexes", "done")).status_code == 200
    assert (await mark(learner, "indexes", "done")).status_code == 200  # no change: not again
    assert (await mark(learner, "status-codes", "in_progress")).status_code == 200

    assert await sample(client, "skilltree_signups_total", via="registration") == signups + 1
    assert await sample(client, "skilltree_topics_completed_total") == done + 1


async def test_a_refused_sign_up_is_not_counted(client: httpx.AsyncClient) -> None:
    before = await sample(client, "skilltree_signups_total", via="registration")

    refused = await client.post(
        "/v1/auth/register",
        json={"email": "weak@example.org", "password": "password", "display_name": "Weak"},
    )

    assert refused.status_code == 422
    assert await sample(client, "skilltree_signups_total", via="registration") == before


@pytest.mark.postgres
async def test_the_pool_counts_requests_waiting_for_a_connection() -> None:
    async with temporary_postgres_database() as url:
        database = Database.from_settings(
            DatabaseSettings(url=url, pool_size=1, max_overflow=0, pool_timeout_seconds=5)
        )
        pool = database.engine.pool
        assert isinstance(pool, FairQueuePool)
        try:
            async with database.engine.connect() as held:
                await held.exec_driver_sql("SELECT 1")
                waiter = asyncio.create_task(_one_query(database))
                while pool.waiting() == 0:  # noqa: ASYNC110  (the pool has no event for this)
                    await asyncio.sleep(0.01)
                assert (pool.checkedout(), pool.waiting()) == (1, 1)
            await waiter
            assert pool.waiting() == 0
        finally:
            await database.dispose()


async def _one_query(database: Database) -> None:
    async with database.engine.connect() as connection:
        await connection.exec_driver_sql("SELECT 1")
