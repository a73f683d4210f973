"""How e-mail leaves: an .eml outbox folder (embedded default) or SMTP through the task queue.

With SMTP, a request never talks to the mail server: it enqueues a `mail.send` task in its
transaction (transactional_mail.py) and answers; a worker sends it. A temporary SMTP failure
(4xx, a dropped connection, a timeout) is retried with back-off; a permanent one (5xx: no such
mailbox, rejected content) cannot succeed later and goes straight to the dead-letter queue.
"""

from __future__ import annotations

import aiosmtplib

from skilltree.platform.config import MailSettings
from skilltree.platform.mail import SEND_TASK, Mailer, Message, OutboxMailer, to_email
from skilltree.platform.queue.retry import PermanentFailure, RetryPolicy
from skilltree.platform.queue.tasks import Job, Payload, task


class SmtpMailer:
    """Delivers one message over SMTP (aiosmtplib), classifying failures for the queue."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def send(self, message: Message) -> None:
        settings = self.settings
        try:
            await aiosmtplib.send(
                to_email(message, settings.sender),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            if all(_is_permanent(code) for code in codes):
                raise PermanentFailure(f"recipients refused: {error}") from error
            raise
        except aiosmtplib.SMTPResponseException as error:
            if _is_permanent(error.code):
                raise PermanentFailure(f"SMTP {error.code}: {error.message}") from error
            raise


def _is_permanent(code: int) -> bool:
    # RFC 5321 §4.2.1: 5yz is a permanent negative completion reply, 4yz a transient one.
    return 500 <= code < 600


def delivery_mailer(settings: MailSettings) -> Mailer:
    """The mailer a worker delivers with."""
    if settings.transport == "smtp":
        return SmtpMailer(settings)
    return OutboxMailer(settings)


# Mail servers greylist (451, try again in a few minutes) and restart; an hour of attempts
# rides that out without holding a message for days.
MAIL_RETRY = RetryPolicy(max_attempts=8, base_delay_seconds=15.0, max_delay_seconds=900.0)


@task(SEND_TASK, retry=MAIL_RETRY, timeout_seconds=60.0)
async def send_mail(job: Job, payload: Payload) -> None:
    await delivery_mailer(job.resources.settings.mail).send(Message.from_payload(payload))
