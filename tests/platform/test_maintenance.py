"""The clean-up job removes what has expired and keeps what has not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import func, select

from skilltree.accounts.models import EmailToken
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.maintenance import CLEANUPS, run_cleanups
from skilltree.platform.queue import outbox
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from skilltree.wiring import wire_background
from tests.support.accounts import Browser
from tests.support.background import make_resources

wire_background()  # registers every clean-up, as the worker does

People = Callable[[str], Awaitable[Browser]]


async def count(database: Database, model: type) -> int:
    async with database.unit_of_work() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def test_every_clean_up_is_registered() -> None:
    assert {
        "accounts.expired-sessions",
        "accounts.expired-tokens",
        "idempotency-keys",
        "outbox",
        "processed-events",
        "scheduled-runs",
    } <= set(CLEANUPS)


async def test_expired_tokens_and_old_outbox_rows_go_recent_ones_stay(
    people: People, settings: Settings, database: Database, clock: FrozenClock
) -> None:

    await people("Ada")  # leaves a used verification token behind
    async with database.unit_of_work() as session:
        for age_days in (30, 1):
            sent_at = clock.now() - timedelta(days=age_days)
            outbox.enqueue(session, "test.task", {}, now=sent_at)
        await session.flush()
        for row in (await session.scalars(select(OutboxMessage))).all():
            row.published_at = row.created_at
    tokens_before = await count(database, EmailToken)
    clock.advance(days=2)  # past the 24 h verification lifetime
    resources, _queue = make_resources(settings, database, clock)

    await run_cleanups(Job(resources, "tick", 1, 5), {"tick": clock.now().isoformat()})

    assert tokens_before >= 1
    assert await count(database, EmailToken) == 0
    async with database.unit_of_work() as session:
        test_rows = select(OutboxMessage.created_at).where(OutboxMessage.task_name == "test.task")
        kept = (await session.scalars(test_rows)).all()
    assert kept == [clock.now() - timedelta(days=3)]
