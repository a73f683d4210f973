"""Brute-force protection: back-off per account and per IP, the same for unknown accounts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import RedisSettings, Settings
from tests.support.accounts import PASSWORD, register_and_verify

WRONG = "not the right password"


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    """Every test here runs with the counters in the database and in Redis."""
    return settings.model_copy(update={"redis": shared_state})


async def attempt(
    client: httpx.AsyncClient, email: str = "ada@example.org", password: str = WRONG
) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def test_five_failures_are_free_then_the_account_is_locked_with_retry_after(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)

    statuses = [(await attempt(client)).status_code for _ in range(6)]
    locked = await attempt(client, password=PASSWORD)

    assert statuses == [401] * 6
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "1"
    assert locked.json()["type"] == "/problems/too-many-attempts"


async def test_each_further_failure_doubles_the_lock(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    for _ in range(6):
        await attempt(client)
    waits = []
    for _ in range(3):
        locked = await attempt(client)
        wait = int(locked.headers["retry-after"])
        waits.append(wait)
        clock.advance(seconds=wait)
        assert (await attempt(client)).status_code == 401  # unlocked: one more failure

    assert waits == [1, 2, 4]


async def test_the_right_password_works_once_the_lock_expires_and_clears_the_count(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    for _ in range(6):
        await attempt(client)
    clock.advance(seconds=1)

    assert (await attempt(client, password=PASSWORD)).status_code == 200
    assert (await attempt(client)).status_code == 401  # the count started over


async def test_an_unknown_account_locks_exactly_like_a_real_one(client: httpx.AsyncClient) -> None:
    statuses = [(await attempt(client, email="nobody@example.org")).status_code for _ in range(7)]

    assert statuses == [401] * 6 + [429]


async def test_one_address_spraying_many_accounts_is_slowed_down(client: httpx.AsyncClient) -> None:
    statuses = [
        (await attempt(client, email=f"user{n}@example.org")).status_code for n in range(22)
    ]

    assert statuses[:21] == [401] * 21
    assert statuses[21] == 429


async def test_old_failures_are_forgotten_after_an_hour(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    for _ in range(5):
        await attempt(client)
    clock.advance(hours=1, seconds=1)

    assert [(await attempt(client)).status_code for _ in range(6)] == [401] * 6
