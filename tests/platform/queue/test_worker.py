"""The worker on the database broker: ack after success, retries, dead letters, graceful stop."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.queue import outbox
from skilltree.platform.queue.database_broker import DatabaseBroker
from skilltree.platform.queue.models import DeadLetter, QueuedTask
from skilltree.platform.queue.retry import PermanentFailure, RetryPolicy
from skilltree.platform.queue.tasks import Job, Payload
from tests.support.background import (
    MovableClock,
    eventually,
    handed_on,
    make_resources,
    nothing_left_to_run,
    only_dead_letter,
    running_worker,
    temporary_task,
)

QUICK_RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.05)


async def queue_task(database: Database, name: str, payload: Payload) -> None:
    async with database.unit_of_work() as session:
        outbox.enqueue(session, name, payload, now=_now())


def _now() -> datetime:
    return datetime.now(UTC)


async def count(database: Database, model: Any) -> int:
    async with database.unit_of_work() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_task_runs_once_and_its_message_is_acknowledged(
    bg_database: Database, bg_settings: Settings
) -> None:
    seen: list[Payload] = []

    async def remember(job: Job, payload: Payload) -> None:
        seen.append(payload)

    with temporary_task("test.remember", remember):
        async with running_worker(bg_settings, bg_database):
            await queue_task(bg_database, "test.remember", {"n": 1})
            await eventually(lambda: _true(len(seen) == 1), "the task to run")
            await eventually(
                lambda: _zero(count(bg_database, QueuedTask)), "the message to be acknowledged"
            )

    assert seen == [{"n": 1}]


async def test_a_failing_task_is_retried_then_dead_lettered(
    bg_database: Database, bg_settings: Settings
) -> None:
    attempts: list[int] = []

    async def flaky(job: Job, payload: Payload) -> None:
        attempts.append(job.attempt)
        raise ConnectionError("the mail server is restarting")

    with temporary_task("test.flaky", flaky, retry=QUICK_RETRY):
        async with running_worker(bg_settings, bg_database):
            await queue_task(bg_database, "test.flaky", {"to": "ada@example.org"})
            await eventually(lambda: _one(count(bg_database, DeadLetter)), "a dead letter")

    assert attempts == [1, 2, 3]
    letter = await only_dead_letter(bg_database)
    assert letter.task_name == "test.flaky"
    assert letter.attempts == 3
    assert letter.args == [{"to": "ada@example.org"}]
    assert "ConnectionError: the mail server is restarting" in letter.error


async def test_a_task_that_succeeds_on_a_retry_leaves_no_dead_letter(
    bg_database: Database, bg_settings: Settings
) -> None:
    attempts: list[int] = []

    async def second_time_lucky(job: Job, payload: Payload) -> None:
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise TimeoutError("slow")

    with temporary_task("test.lucky", second_time_lucky, retry=QUICK_RETRY):
        async with running_worker(bg_settings, bg_database):
            await queue_task(bg_database, "test.lucky", {})
            await eventually(lambda: _true(attempts == [1, 2]), "the retry to succeed")
            # Acknowledged, no retry left in the outbox: a third attempt could only come now.
            await eventually(lambda: nothing_left_to_run(bg_database), "the queue to drain")

    assert attempts == [1, 2]
    assert await count(bg_database, DeadLetter) == 0


async def test_a_permanent_failure_is_dead_lettered_without_retries(
    bg_database: Database, bg_settings: Settings
) -> None:
    attempts: list[int] = []

    async def hopeless(job: Job, payload: Payload) -> None:
        attempts.append(job.attempt)
        raise PermanentFailure("550 no such mailbox")

    with temporary_task("test.hopeless", hopeless, retry=QUICK_RETRY):
        async with running_worker(bg_settings, bg_database):
            await queue_task(bg_database, "test.hopeless", {})
            await eventually(lambda: _one(count(bg_database, DeadLetter)), "a dead letter")

    assert attempts == [1]


async def test_on_stop_the_running_task_finishes_and_no_new_task_starts(
    bg_database: Database, bg_settings: Settings
) -> None:
    started: list[str] = []
    finished: list[str] = []
    release = asyncio.Event()

    async def slow(job: Job, payload: Payload) -> None:
        started.append(payload["id"])
        await release.wait()
        finished.append(payload["id"])

    settings = bg_settings.model_copy(
        update={"queue": bg_settings.queue.model_copy(update={"concurrency": 1})}
    )
    with temporary_task("test.slow", slow):
        async with running_worker(settings, bg_database) as stop:
            await queue_task(bg_database, "test.slow", {"id": "first"})
            await eventually(lambda: _true(started == ["first"]), "the first task to start")
            await queue_task(bg_database, "test.slow", {"id": "second"})
            # "second" is on the broker, ready for a worker that is busy with "first".
            await eventually(lambda: handed_on(bg_database), "the relay to publish 'second'")
            stop.set()
            # A worker that ignored the stop would take "second" as soon as "first" ends; the
            # context's exit waits for the worker to finish.
            release.set()

    assert finished == ["first"]
    assert started == ["first"]
    # "second" is still queued, for the next worker.
    async with bg_database.unit_of_work() as session:
        names = (await session.scalars(select(QueuedTask.task_name))).all()
    assert names == ["test.slow"]


async def test_a_task_outliving_the_grace_period_is_left_for_another_worker(
    bg_database: Database, bg_settings: Settings
) -> None:
    runs: list[int] = []

    async def endless(job: Job, payload: Payload) -> None:
        runs.append(job.attempt)
        if len(runs) == 1:
            await asyncio.sleep(60)

    settings = bg_settings.model_copy(
        update={
            "queue": bg_settings.queue.model_copy(
                update={"shutdown_grace_seconds": 0.3, "lease_seconds": 1.0}
            )
        }
    )
    with temporary_task("test.endless", endless, timeout_seconds=120):
        loop = asyncio.get_running_loop()
        async with running_worker(settings, bg_database) as stop:
            await queue_task(bg_database, "test.endless", {})
            await eventually(lambda: _true(runs == [1]), "the task to start")
            stopped_at = loop.time()
            stop.set()
        assert loop.time() - stopped_at < 3.0  # the grace period, not the task, decides
        # Its message was never acknowledged: once the lease lapses, the next worker runs it.
        async with running_worker(settings, bg_database, relay=False):
            await eventually(lambda: _true(len(runs) == 2), "the task to run again")


async def take_and_die(broker: DatabaseBroker, clock: MovableClock, lease_seconds: float) -> None:
    """A worker leases the message and is killed running it: nothing acknowledges the message,
    and its lease runs out."""
    assert await broker.claim() is not None
    clock.advance(seconds=lease_seconds + 1)


async def test_a_task_that_kills_its_worker_every_time_is_dead_lettered_not_run_again(
    bg_database: Database, bg_settings: Settings
) -> None:
    runs: list[int] = []

    async def poison(job: Job, payload: Payload) -> None:
        runs.append(job.attempt)

    clock = MovableClock()
    _resources, queue = make_resources(bg_settings, bg_database, clock)
    assert isinstance(queue.broker, DatabaseBroker)
    with temporary_task("test.poison", poison, retry=QUICK_RETRY):
        await queue.publish("test.poison", [{}], task_id="poison-1", labels={"attempt": 1})
        for _death in range(QUICK_RETRY.max_attempts):
            await take_and_die(queue.broker, clock, bg_settings.queue.lease_seconds)
        async with running_worker(bg_settings, bg_database, relay=False, clock=clock):
            await eventually(lambda: _one(count(bg_database, DeadLetter)), "a dead letter")
            await eventually(lambda: _zero(count(bg_database, QueuedTask)), "the ack")

    assert runs == []  # the fourth delivery is not run: its three attempts were spent
    letter = await only_dead_letter(bg_database)
    assert (letter.task_id, letter.task_name, letter.attempts) == ("poison-1", "test.poison", 3)
    assert "delivered 3 times without finishing" in letter.error


async def test_a_delivery_that_never_finished_counts_as_one_attempt(
    bg_database: Database, bg_settings: Settings
) -> None:
    attempts: list[int] = []

    async def flaky(job: Job, payload: Payload) -> None:
        attempts.append(job.attempt)
        raise ConnectionError("the mail server is restarting")

    clock = MovableClock()
    _resources, queue = make_resources(bg_settings, bg_database, clock)
    assert isinstance(queue.broker, DatabaseBroker)
    with temporary_task("test.flaky", flaky, retry=QUICK_RETRY):
        await queue.publish("test.flaky", [{}], task_id="flaky-1", labels={"attempt": 1})
        await take_and_die(queue.broker, clock, bg_settings.queue.lease_seconds)
        async with running_worker(bg_settings, bg_database, clock=clock):
            await eventually(lambda: _one(count(bg_database, DeadLetter)), "a dead letter")

    # Attempt 1 died with its worker; attempts 2 and 3 raised. Three in all, as the policy says.
    assert attempts == [2, 3]
    letter = await only_dead_letter(bg_database)
    assert letter.attempts == 3
    assert "ConnectionError" in letter.error


async def test_a_delayed_message_waits_until_it_is_due(
    bg_database: Database, bg_settings: Settings
) -> None:
    seen: list[str] = []

    async def remember(job: Job, payload: Payload) -> None:
        seen.append(payload["id"])

    with temporary_task("test.delayed", remember):
        async with running_worker(bg_settings, bg_database):
            async with bg_database.unit_of_work() as session:
                outbox.enqueue(
                    session, "test.delayed", {"id": "later"}, now=_now(), delay_seconds=0.6
                )
                outbox.enqueue(session, "test.delayed", {"id": "now"}, now=_now())
            await eventually(lambda: _true(seen == ["now"]), "the due task")
            await eventually(lambda: _true(seen == ["now", "later"]), "the delayed task")


async def test_publishing_directly_reaches_the_worker(
    bg_database: Database, bg_settings: Settings
) -> None:
    seen: list[Payload] = []

    async def remember(job: Job, payload: Payload) -> None:
        seen.append(payload)

    _resources, queue = make_resources(bg_settings, bg_database)
    with temporary_task("test.direct", remember):
        async with running_worker(bg_settings, bg_database, relay=False):
            await queue.publish(
                "test.direct", [{"x": 1}], task_id=uuid.uuid4().hex, labels={"attempt": 1}
            )
            await eventually(lambda: _true(seen == [{"x": 1}]), "the task to run")


async def _true(value: bool) -> bool:
    return value


async def _zero(awaitable: Any) -> bool:
    return bool(await awaitable == 0)


async def _one(awaitable: Any) -> bool:
    return bool(await awaitable == 1)
