"""E-mail through the outbox: stored by the transaction of the change that causes it, sent once
that transaction commits, and sent by the relay if the process dies before it could send it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from skilltree.platform.clock import SystemClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.mail import Message, read_outbox
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.outbox import RELAY_LEASE
from skilltree.platform.transactional_mail import TransactionalMailer, transactional_mailer
from skilltree.wiring import wire_background
from tests.support.background import (
    MovableClock,
    ProcessKilled,
    eventually,
    make_resources,
    nothing_left_to_run,
    running_worker,
)

wire_background()  # registers mail.send, as the worker does

MESSAGE = Message(to="ada@example.org", subject="Confirm your address", text="token=abc")


def mailer_for(settings: Settings, database: Database) -> TransactionalMailer:
    _resources, queue = make_resources(settings, database)
    return transactional_mailer(settings.mail, database, SystemClock(), queue)


async def mail_rows(database: Database) -> list[OutboxMessage]:
    async with database.unit_of_work() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def test_the_mail_of_a_rolled_back_change_is_neither_stored_nor_sent(
    bg_database: Database, bg_settings: Settings
) -> None:
    mailer = mailer_for(bg_settings, bg_database)

    async def failing_change() -> None:
        async with bg_database.unit_of_work() as session:
            mailer.enqueue(session, MESSAGE)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()

    assert await mail_rows(bg_database) == []
    assert read_outbox(bg_settings.mail.outbox_dir) == []


async def test_the_mail_is_stored_by_the_changes_transaction_and_sent_when_it_commits(
    bg_database: Database, bg_settings: Settings
) -> None:
    mailer = mailer_for(bg_settings, bg_database)

    async with bg_database.unit_of_work() as session:
        mailer.enqueue(session, MESSAGE)
        await session.flush()
        stored = (await session.scalars(select(OutboxMessage))).one()
        assert (stored.task_name, stored.args) == ("mail.send", [MESSAGE.to_payload()])
        assert read_outbox(bg_settings.mail.outbox_dir) == []  # nothing leaves before the commit

    [sent] = read_outbox(bg_settings.mail.outbox_dir)
    assert (sent["To"], sent["Subject"]) == (MESSAGE.to, MESSAGE.subject)
    [row] = await mail_rows(bg_database)
    assert row.published_at is not None  # handed on: no relay sends it again


async def test_mail_whose_process_died_after_the_commit_is_sent_by_the_relay_exactly_once(
    bg_database: Database, bg_settings: Settings
) -> None:

    clock = MovableClock()

    async def killed(row: OutboxMessage) -> None:
        raise ProcessKilled  # the process dies while handing the mail on

    mailer = TransactionalMailer(bg_database, clock, hand_over=killed)
    with pytest.raises(ProcessKilled):
        async with bg_database.unit_of_work() as session:
            mailer.enqueue(session, MESSAGE)

    [row] = await mail_rows(bg_database)
    assert row.published_at is None  # committed with the change, never sent
    assert read_outbox(bg_settings.mail.outbox_dir) == []

    clock.advance(seconds=RELAY_LEASE.total_seconds() + 1)  # the dead process's claim lapses
    async with running_worker(bg_settings, bg_database, clock=clock):
        await eventually(lambda: _sent(bg_settings, 1), "the relay and a worker to send it")
        # Handed on and acknowledged: no relay or worker has anything left that could send it
        # again, so the count below is final.
        await eventually(lambda: nothing_left_to_run(bg_database), "the queue to drain")

    [sent] = read_outbox(bg_settings.mail.outbox_dir)
    assert sent["To"] == MESSAGE.to
    [row] = await mail_rows(bg_database)
    assert row.published_at is not None


async def _sent(settings: Settings, count: int) -> bool:
    return len(read_outbox(settings.mail.outbox_dir)) == count
