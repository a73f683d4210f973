"""Outgoing e-mail behind one interface.

Services build a message and hand it to a Mailer; which Mailer runs is the operator's choice.
The embedded default writes each message as an .eml file into an outbox folder, where a developer
(or a test) can open it; SMTP delivery through the task queue replaces it in production.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from skilltree.platform.config import MailSettings


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    async def send(self, message: Message) -> None: ...


class OutboxMailer:
    """Writes every message to `<outbox>/<nanoseconds>-<id>.eml`, in RFC 5322 format."""

    def __init__(self, settings: MailSettings) -> None:
        self.outbox = settings.outbox_dir
        self.sender = settings.sender

    async def send(self, message: Message) -> None:
        await anyio.to_thread.run_sync(self._write, self._render(message))

    def _render(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(domain="skilltree.localhost")
        email.set_content(message.text)
        return email

    def _write(self, email: EmailMessage) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        # Nanosecond timestamps first, so the folder lists messages in the order they were sent.
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        # Write then rename: a reader never sees a half-written message.
        partial = self.outbox / f".{name}.partial"
        partial.write_bytes(bytes(email))
        partial.replace(self.outbox / name)


def read_outbox(outbox: Path) -> list[EmailMessage]:
    """Every message in an outbox folder, oldest first (used by tests and `make run` users)."""
    from email import message_from_bytes, policy

    messages = []
    for path in sorted(outbox.glob("*.eml")):
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages
