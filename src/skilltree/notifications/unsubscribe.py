"""Unsubscribe links that need no sign-in and cannot be forged.

A token is `<user id>.<topic>.<signature>`, the signature an HMAC-SHA256 under a key derived
from SKILLTREE_SECRET_KEY. Nothing is stored: the link in a digest works until the secret key
is rotated away, and changing someone else's preferences would take forging an HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from pydantic import SecretStr

TOPICS = ("weekly_digest", "review_reminders")


def _key(secret: SecretStr) -> bytes:
    return hashlib.sha256(
        b"skilltree unsubscribe v1:" + secret.get_secret_value().encode()
    ).digest()


def _signature(secret: SecretStr, user_id: int, topic: str) -> str:
    mac = hmac.new(_key(secret), f"{user_id}.{topic}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def token_for(secret: SecretStr, user_id: int, topic: str) -> str:
    return f"{user_id}.{topic}.{_signature(secret, user_id, topic)}"


def read_token(secrets: list[SecretStr], token: str) -> tuple[int, str] | None:
    """(user id, topic) if any current or previous key signed the token, else None."""
    user_part, _, rest = token.partition(".")
    topic, _, signature = rest.partition(".")
    if not user_part.isdigit() or topic not in TOPICS or len(user_part) > 18:
        return None
    user_id = int(user_part)
    for secret in secrets:
        if hmac.compare_digest(signature.encode(), _signature(secret, user_id, topic).encode()):
            return user_id, topic
    return None
