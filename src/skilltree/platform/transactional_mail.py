"""E-mail caused by a change is stored by the change's own transaction, then sent.

Sending after the commit (an `after_commit` callback) loses the message if the process dies
between the commit and the send; sending before it mails people about changes that were then
rolled back. So a unit of work *enqueues* the message: an outbox row for the `mail.send` task,
committed with the change or not at all. The row is the record that the e-mail is owed.

Waiting for the relay's next poll would make people wait for their verification link, and the
embedded default may run no worker at all. So right after the commit, the process that wrote
the row hands it on itself — to the broker when mail goes out over SMTP, straight into the .eml
folder otherwise — claiming it first, exactly as a relay would. If that hand-over fails or the
process dies first, the row is still there and a relay sends it later.
"""

from __future__ import annotations

from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import Clock
from skilltree.platform.config import MailSettings
from skilltree.platform.db import Database, after_commit
from skilltree.platform.mail import SEND_TASK, Mailer, Message, OutboxMailer
from skilltree.platform.queue import outbox
from skilltree.platform.queue.client import TaskQueue
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.outbox import HandOver

log = structlog.get_logger(__name__)


class TransactionalMailer:
    def __init__(self, database: Database, clock: Clock, *, hand_over: HandOver) -> None:
        self.database = database
        self.clock = clock
        self.hand_over = hand_over

    def enqueue(self, session: AsyncSession, message: Message) -> None:
        """Owe `message` as part of the session's transaction; it is sent once that commits."""
        message_id = outbox.enqueue(session, SEND_TASK, message.to_payload(), now=self.clock.now())
        after_commit(session, partial(self._hand_over_now, message_id))

    async def _hand_over_now(self, message_id: str) -> None:
        try:
            await outbox.hand_over_now(self.database, self.clock, [message_id], self.hand_over)
        except Exception:
            # The change and its e-mail are committed: the request succeeded, and a relay
            # sends the e-mail once this process's claim on it lapses.
            log.exception("mail.hand_over_failed", message_id=message_id)


def transactional_mailer(
    settings: MailSettings, database: Database, clock: Clock, queue: TaskQueue
) -> TransactionalMailer:
    if settings.transport == "smtp":
        # A worker talks to the mail server; the process that made the change never waits.
        return TransactionalMailer(database, clock, hand_over=partial(outbox.publish, queue))
    return TransactionalMailer(database, clock, hand_over=partial(_deliver, OutboxMailer(settings)))


async def _deliver(mailer: Mailer, row: OutboxMessage) -> None:
    await mailer.send(Message.from_payload(row.args[0]))
