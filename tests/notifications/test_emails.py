"""E-mail templates: both parts, escaping in HTML, unsubscribe headers; signed unsubscribe
tokens."""

from __future__ import annotations

from pydantic import SecretStr

from skilltree.notifications.unsubscribe import read_token, token_for
from skilltree.platform import emails

KEY = SecretStr("k" * 40)


def test_an_invitation_has_a_text_and_an_escaped_html_part() -> None:
    message = emails.render(
        "invitation",
        to="bob@example.org",
        inviter="<script>alert(1)</script>",
        org="Cohort 7",
        role="learner",
        days=7,
        link="https://skilltree.test/invitations#token=abc",
    )

    assert message.subject == "<script>alert(1)</script> invites you to Cohort 7 on skilltree"
    assert "https://skilltree.test/invitations#token=abc" in message.text
    assert message.html is not None
    assert "&lt;script&gt;" in message.html
    assert "<script>" not in message.html


def test_optional_e_mails_carry_one_click_unsubscribe_headers() -> None:
    message = emails.render(
        "review_reminder",
        to="ada@example.org",
        due=3,
        review_url="https://skilltree.test/reviews",
        unsubscribe_url="https://skilltree.test/v1/notifications/unsubscribe?token=t",
    )

    assert message.subject == "3 topics to review today"
    assert dict(message.headers) == {
        "List-Unsubscribe": "<https://skilltree.test/v1/notifications/unsubscribe?token=t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert "unsubscribe?token=t" in message.text


def test_an_unsubscribe_token_names_its_user_and_topic() -> None:
    token = token_for(KEY, 42, "weekly_digest")

    assert read_token([KEY], token) == (42, "weekly_digest")


def test_a_token_signed_with_a_rotated_out_key_still_works() -> None:
    old = SecretStr("o" * 40)

    assert read_token([KEY, old], token_for(old, 7, "review_reminders")) == (7, "review_reminders")


def test_a_tampered_token_is_refused() -> None:
    user_part, topic, signature = token_for(KEY, 42, "weekly_digest").split(".")

    assert read_token([KEY], f"43.{topic}.{signature}") is None
    assert read_token([KEY], f"{user_part}.review_reminders.{signature}") is None
    assert read_token([KEY], f"{user_part}.{topic}.") is None
    assert read_token([KEY], "nonsense") is None
