"""Registration does the same work whether or not the address has an account, so neither its
answer nor its timing tells which addresses are registered (bench/enumeration.py measures it)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from skilltree.accounts import passwords
from skilltree.platform.mail import read_outbox
from tests.support.accounts import PASSWORD, register_and_verify


class CountingHasher(PasswordHasher):
    """The test suite's cheap hasher, counting the hashes computed."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.hashes = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashes += 1
        return super().hash(password, salt=salt)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", counting)
    return counting


async def register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": "Someone"}
    )


async def test_registering_an_existing_and_a_new_address_costs_the_same(
    client: httpx.AsyncClient, outbox: Path, hasher: CountingHasher
) -> None:
    await register_and_verify(client, outbox, email="ada@example.org")
    mails_before = len(read_outbox(outbox))
    hashes_before = hasher.hashes

    existing = await register(client, "ada@example.org")
    hashes_existing = hasher.hashes - hashes_before
    mails_existing = len(read_outbox(outbox)) - mails_before
    new = await register(client, "new@example.org")
    hashes_new = hasher.hashes - hashes_before - hashes_existing
    mails_new = len(read_outbox(outbox)) - mails_before - mails_existing

    assert existing.status_code == new.status_code == 202
    assert existing.content == new.content
    assert hashes_existing == hashes_new == 1  # one argon2id hash: nearly all of the work
    assert mails_existing == mails_new == 1  # one e-mail each: a notice, or a verification link


async def request_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/v1/auth/password-reset", json={"email": email})


async def test_a_reset_for_an_existing_and_an_unknown_address_costs_the_same(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox, email="ada@example.org")
    mails_before = len(read_outbox(outbox))

    existing = await request_reset(client, "ada@example.org")
    mails_existing = len(read_outbox(outbox)) - mails_before
    unknown = await request_reset(client, "nobody@example.org")
    mails_unknown = len(read_outbox(outbox)) - mails_before - mails_existing

    assert existing.status_code == unknown.status_code == 202
    assert existing.content == unknown.content
    # One e-mail each, written and handed over the same way (nearly all of the work): a reset
    # link, or a notice that the address has no account.
    assert mails_existing == mails_unknown == 1
    assert "nobody@example.org" in {message["To"] for message in read_outbox(outbox)}
