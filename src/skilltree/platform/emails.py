"""Every e-mail skilltree sends, rendered from Jinja2 templates as text and HTML.

`email_templates/<kind>.txt` is the text part, `email_templates/<kind>.html` the HTML
alternative (escaped automatically: a display name like `<script>` arrives as text). Optional
e-mails carry an unsubscribe link in the body and in the headers: `List-Unsubscribe` with
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which lets mail clients show
their own one-click "unsubscribe" button.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from skilltree.platform.mail import Message

if TYPE_CHECKING:
    from jinja2 import Environment

SUBJECTS = {
    "verification": "Confirm your e-mail address for skilltree",
    "already_registered": "Someone tried to sign up with your address",
    "password_reset": "Reset your skilltree password",
    "password_reset_no_account": "A password reset for an address without an account",
    "invitation": "{{ inviter }} invites you to {{ org }} on skilltree",
    "review_reminder": "{{ due }} topic{{ 's' if due != 1 else '' }} to review today",
    "weekly_digest": "Your week on skilltree",
    "assignment_reminder": "{{ roadmap_title }} is due {{ due }} ({{ org }})",
    "account_deleted": "Your skilltree account was deleted",
}


# Jinja2 is imported with the first e-mail rendered, not at start-up: about 3 MB that a
# worker which sends no mail never needs.
@lru_cache(maxsize=1)
def _bodies() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("skilltree.platform", "email_templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing variable is a bug, not an empty string
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def _subjects() -> Environment:
    from jinja2 import Environment, StrictUndefined

    return Environment(undefined=StrictUndefined, autoescape=False)  # noqa: S701  (plain text)


def render(kind: str, *, to: str, unsubscribe_url: str | None = None, **context: Any) -> Message:
    """The message of this kind for `to`, with both parts and, when given, the unsubscribe
    link in body and headers."""
    values = {**context, "unsubscribe_url": unsubscribe_url}
    subject = _subjects().from_string(SUBJECTS[kind]).render(values)
    values["subject"] = subject
    headers: tuple[tuple[str, str], ...] = ()
    if unsubscribe_url is not None:
        headers = (
            ("List-Unsubscribe", f"<{unsubscribe_url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
    return Message(
        to=to,
        subject=subject,
        text=_bodies().get_template(f"{kind}.txt").render(values),
        html=_bodies().get_template(f"{kind}.html").render(values),
        headers=headers,
    )
