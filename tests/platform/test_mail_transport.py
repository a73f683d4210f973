"""SMTP delivery against a real SMTP server (aiosmtpd) started in the test process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from taskiq import TaskiqMessage

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import MailSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.mail import Message
from skilltree.platform.mail_transport import SmtpMailer, send_mail
from skilltree.platform.queue.database_broker import DatabaseBroker
from skilltree.platform.queue.retry import PermanentFailure
from skilltree.platform.queue.tasks import Job
from tests.support.accounts import PASSWORD
from tests.support.background import make_resources


@dataclass
class Inbox:
    """Accepts mail like a real server, or answers every RCPT with a chosen reply."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    reply_to_rcpt: str | None = None

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.reply_to_rcpt is not None:
            return self.reply_to_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(
        MailSettings(
            transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            sender="skilltree <no-reply@skilltree.test>",
        )
    )


MESSAGE = Message(
    to="ada@example.org",
    subject="Your weekly digest",
    text="Three topics done this week.",
    html="<p>Three topics <b>done</b> this week.</p>",
    headers=(("List-Unsubscribe", "<https://skilltree.test/u/abc>"),),
)


async def test_a_message_arrives_with_text_html_and_headers(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox

    await mailer(port).send(MESSAGE)

    [(envelope, received)] = handler.messages
    assert envelope.mail_from == "no-reply@skilltree.test"
    assert envelope.rcpt_tos == ["ada@example.org"]
    assert received["Subject"] == "Your weekly digest"
    assert received["List-Unsubscribe"] == "<https://skilltree.test/u/abc>"
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert plain is not None
    assert "Three topics done" in plain.get_content()
    assert html is not None
    assert "<b>done</b>" in html.get_content()


async def test_a_temporary_refusal_is_retryable(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    handler.reply_to_rcpt = "451 4.7.1 Greylisted, try again later"

    with pytest.raises(Exception) as raised:  # noqa: PT011  (any error but a permanent one)
        await mailer(port).send(MESSAGE)

    assert not isinstance(raised.value, PermanentFailure)
    assert handler.messages == []


async def test_a_permanent_refusal_is_a_permanent_failure(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    handler.reply_to_rcpt = "550 5.1.1 No such mailbox"

    with pytest.raises(PermanentFailure, match="550"):
        await mailer(port).send(MESSAGE)


async def test_an_unreachable_server_is_retryable() -> None:
    unreachable = SmtpMailer(
        MailSettings(smtp_host="127.0.0.1", smtp_port=1, smtp_timeout_seconds=2)
    )

    with pytest.raises(Exception) as raised:  # noqa: PT011
        await unreachable.send(MESSAGE)

    assert not isinstance(raised.value, PermanentFailure)


def test_a_message_survives_the_trip_through_a_queue_payload() -> None:
    assert Message.from_payload(MESSAGE.to_payload()) == MESSAGE


async def test_with_smtp_a_request_only_queues_the_mail_and_the_task_delivers_it(
    settings: Settings, database: Database, clock: FrozenClock, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    smtp = settings.mail.model_copy(
        update={"transport": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}
    )
    smtp_settings = settings.model_copy(update={"mail": smtp})
    app = create_app(smtp_settings, database=database, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/v1/auth/register",
                json={"email": "ada@example.org", "password": PASSWORD, "display_name": "Ada"},
            )
    assert response.status_code == 202
    assert handler.messages == []  # the request did not wait for the mail server

    resources, queue = make_resources(smtp_settings, database)
    broker = queue.broker
    assert isinstance(broker, DatabaseBroker)
    claimed = await broker.claim()
    assert claimed is not None
    queued = TaskiqMessage.model_validate_json(claimed.message)
    assert queued.task_name == "mail.send"
    await send_mail(Job(resources, queued.task_id, 1, 8), queued.args[0])

    [(_envelope, received)] = handler.messages
    assert received["To"] == "ada@example.org"
    body = received.get_body(("plain",))
    assert body is not None
    assert "verify-email#token=" in body.get_content()
