"""Outgoing e-mail behind one interface.

Services build a message and enqueue it in their transaction (transactional_mail.py); a Mailer
delivers it, and which Mailer runs is the operator's choice. The embedded default writes each
message as an .eml file into an outbox folder, where a developer (or a test) can open it; in
production a worker sends it to an SMTP server (see mail_transport.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

from skilltree.platform.config import MailSettings

# The task that delivers one message, its payload `Message.to_payload()` (mail_transport.py).
SEND_TASK = "mail.send"


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    # An HTML alternative of `text`; mail clients show the richest part they support.
    html: str | None = None
    # Extra headers such as List-Unsubscribe, as (name, value) pairs.
    headers: tuple[tuple[str, str], ...] = ()

    def to_payload(self) -> dict[str, Any]:
        """The message as JSON, for a queued task."""
        return {
            "to": self.to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "headers": [list(pair) for pair in self.headers],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Message:
        return cls(
            to=str(payload["to"]),
            subject=str(payload["subject"]),
            text=str(payload["text"]),
            html=payload.get("html"),
            headers=tuple((str(name), str(value)) for name, value in payload.get("headers", [])),
        )


class Mailer(Protocol):
    async def send(self, message: Message) -> None: ...


def to_email(message: Message, sender: str) -> EmailMessage:
    """The RFC 5322 form of a message: text/plain, plus text/html as an alternative."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain="skilltree.localhost")
    for name, value in message.headers:
        email[name] = value
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


class OutboxMailer:
    """Writes every message to `<outbox>/<nanoseconds>-<id>.eml`, in RFC 5322 format."""

    def __init__(self, settings: MailSettings) -> None:
        self.outbox = settings.outbox_dir
        self.sender = settings.sender

    async def send(self, message: Message) -> None:
        await anyio.to_thread.run_sync(self._write, to_email(message, self.sender))

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
