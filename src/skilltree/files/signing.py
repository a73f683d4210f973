"""Expiring download links: an HMAC over the object, the expiry and the user it was made for.

    /v1/files/{key}?expires=1767225600&signature=...

The key is derived from SKILLTREE_SECRET_KEY (HKDF, its own label), so download links never
share a key with cursors or sessions. A private file's link names its owner, and only they
may use it: a link that leaks is useless to anyone else, and to everyone once it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr


@lru_cache(maxsize=4)
def _key(secret: SecretStr) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"skilltree downloads v1"
    ).derive(secret.get_secret_value().encode())


def sign(secret: SecretStr, key: str, expires: int, user_id: int) -> str:
    message = f"{key}\n{expires}\n{user_id}".encode()
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(
    secret: SecretStr, key: str, expires: int, user_id: int, signature: str, now: float
) -> bool:
    if expires < now:
        return False
    # As bytes: `compare_digest` refuses a str with characters beyond ASCII, which a link's
    # query can carry (a forged or mangled signature is wrong, not an error).
    expected = sign(secret, key, expires, user_id).encode()
    return hmac.compare_digest(signature.encode(), expected)
