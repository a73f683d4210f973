"""Encryption at rest for the few secrets skilltree must be able to read back (TOTP seeds).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) rather than anything home-made. Keys
are derived with HKDF from SKILLTREE_SECRET_KEY and from each of SKILLTREE_PREVIOUS_SECRET_KEYS:
MultiFernet encrypts with the current key and decrypts with any, so a key rotation keeps every
stored secret readable, and `rotate` re-encrypts a value under the current key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr


def digest(secret: str) -> str:
    """The SHA-256 of a random secret (session id, token, API key), as stored in the database.

    A fast hash is right for 256-bit random secrets: unlike passwords they cannot be guessed,
    so a slow, salted hash would add cost and no protection.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def _fernet(secret: SecretStr) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"skilltree secrets-at-rest v1"
    ).derive(secret.get_secret_value().encode())
    return Fernet(base64.urlsafe_b64encode(key))


class SecretBox:
    def __init__(self, current: SecretStr, previous: list[SecretStr]) -> None:
        self._keys = MultiFernet([_fernet(current), *map(_fernet, previous)])

    def encrypt(self, plaintext: str) -> str:
        return self._keys.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        return self._keys.decrypt(ciphertext.encode()).decode()

    def encrypt_bytes(self, plaintext: bytes) -> str:
        return self._keys.encrypt(plaintext).decode()

    def decrypt_bytes(self, ciphertext: str) -> bytes:
        return self._keys.decrypt(ciphertext.encode())

    def rotate(self, ciphertext: str) -> str:
        """The same secret, encrypted under the current key."""
        return self._keys.rotate(ciphertext.encode()).decode()


@lru_cache(maxsize=4)
def secret_box(current: SecretStr, previous: tuple[SecretStr, ...]) -> SecretBox:
    return SecretBox(current, list(previous))
