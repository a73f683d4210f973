"""Brute-force protection for sign-in: exponential back-off per account and per client IP.

After a few free failures, each further failure locks the key for twice as long as the last
(1 s, 2 s, 4 s, ... up to 15 minutes). An attacker guessing one account's password gets a
handful of tries an hour instead of thousands a second; an attacker spraying many accounts from
one address is slowed by the IP key. The per-IP allowance is larger because offices and mobile
networks put many people behind one address. A success clears the account's counter; counters
also forget failures older than the reset window.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.errors import TooManyAttempts

FREE_FAILURES = {"email": 5, "ip": 20}
MAX_LOCK = timedelta(minutes=15)
RESET_AFTER = timedelta(hours=1)


def keys_for(email: str, ip: str) -> list[str]:
    return [f"email:{email}"] + ([f"ip:{ip}"] if ip else [])


async def ensure_not_locked(db: AsyncSession, keys: list[str], now: datetime) -> None:
    """Refuse the attempt, before any password is checked, while a key is locked."""
    locked_until = [
        row.locked_until
        for row in await repository.get_throttles(db, keys)
        if row.locked_until is not None and row.locked_until > now
    ]
    if locked_until:
        raise TooManyAttempts(retry_after=math.ceil((max(locked_until) - now).total_seconds()))


async def record_failure(db: AsyncSession, keys: list[str], now: datetime) -> None:
    for key in keys:
        failures = await repository.count_failure(db, key, now, forget_before=now - RESET_AFTER)
        free = FREE_FAILURES[key.split(":", 1)[0]]
        if failures > free:
            lock = min(timedelta(seconds=2 ** (failures - free - 1)), MAX_LOCK)
            await repository.lock_throttle(db, key, now + lock)


async def record_success(db: AsyncSession, email: str) -> None:
    await repository.clear_throttle(db, f"email:{email}")
