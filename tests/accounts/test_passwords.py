"""The NIST 800-63B password policy and argon2id hashing."""

from __future__ import annotations

import os
import threading
import time

import anyio
import pytest

from skilltree.accounts import passwords
from skilltree.accounts.passwords import (
    WeakPassword,
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "Tr0ub4dor&3-but-longer",
        "ünïcödé pässwörd ✓",
        "x" * 11 + "y",
    ],
)
def test_long_uncommon_passwords_pass_without_composition_rules(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("elevenchars", "too_short"),
        ("x" * 129, "too_long"),
        ("passwordpassword", "common"),
        ("qwerty123456", "common"),
        ("1qaz2wsx3edc", "common"),
        ("abcabcabcabcabc", "common"),
        ("my skilltree password", "context"),
    ],
)
def test_weak_passwords_are_refused(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as raised:
        check_password_policy(password)

    assert raised.value.extensions["reason"] == reason


def test_the_users_own_name_and_email_are_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password_policy("i-am-lovelace-123", context=["ada.lovelace", "Ada"])


async def test_hashes_are_argon2id_and_verify() -> None:
    hashed = await hash_password("correct horse battery staple")

    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "correct horse battery staple")
    assert not await verify_password(hashed, "correct horse battery stapler")
    assert not needs_rehash(hashed)


async def test_no_hash_never_verifies() -> None:
    assert not await verify_password(None, "anything at all here")
    assert not await verify_password("not-a-hash", "anything at all here")


class CountingHasher:
    """Takes a while to hash, and remembers how many hashes ever ran at the same time."""

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        return "hashed"


async def test_no_more_passwords_are_hashed_at_once_than_there_are_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    cores = os.cpu_count() or 1

    async with anyio.create_task_group() as sign_ups:
        for _ in range(3 * cores):
            sign_ups.start_soon(hash_password, "correct horse battery staple")

    assert hasher.most_at_once == cores
