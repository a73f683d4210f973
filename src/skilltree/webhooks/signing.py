"""Standard Webhooks signatures (https://www.standardwebhooks.com), with its reference library.

    webhook-id:        the event id (the same on every retry: receivers dedupe on it)
    webhook-timestamp: Unix seconds of this attempt (receivers refuse old ones: replay defence)
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the secret>

The secret is `whsec_` + base64 of 24 random bytes, shown to the owner once.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (a format marker, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }
