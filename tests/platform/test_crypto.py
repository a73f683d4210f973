"""Secrets at rest survive a key rotation and can be re-encrypted under the new key."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken
from pydantic import SecretStr

from skilltree.platform.crypto import SecretBox

OLD, NEW = SecretStr("the old secret key"), SecretStr("the new secret key")


def test_a_value_round_trips() -> None:
    box = SecretBox(NEW, [])

    assert box.decrypt(box.encrypt("JBSWY3DPEHPK3PXP")) == "JBSWY3DPEHPK3PXP"


def test_values_encrypted_before_a_rotation_stay_readable() -> None:
    stored = SecretBox(OLD, []).encrypt("seed")

    rotated_box = SecretBox(NEW, [OLD])

    assert rotated_box.decrypt(stored) == "seed"
    re_encrypted = rotated_box.rotate(stored)
    assert SecretBox(NEW, []).decrypt(re_encrypted) == "seed"


def test_a_dropped_key_can_no_longer_decrypt() -> None:
    stored = SecretBox(OLD, []).encrypt("seed")

    with pytest.raises(InvalidToken):
        SecretBox(NEW, []).decrypt(stored)
