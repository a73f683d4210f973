"""Brute-force protection for sign-in: exponential back-off per account and per client IP.

After a few free failures, each further failure locks the key for twice as long as the last
(1 s, 2 s, 4 s, ... up to 15 minutes). An attacker guessing one account's password gets a
handful of tries an hour instead of thousands a second; an attacker spraying many accounts from
one address is slowed by the IP key. The per-IP allowance is larger because offices and mobile
networks put many people behind one address. A success clears the account's counter; counters
also forget failures older than the reset window.

The counters live in a ThrottleStore: the database in the embedded default, Redis in production
(every instance must count the same failures, or an attacker spreads guesses across them).

When Redis is down, sign-in fails closed: an attempt that cannot be checked against its lock, or
whose failure cannot be counted, is refused with 503 and Retry-After, the same answer the rate
limiter gives (docs/security.md, docs/reliability.md). Letting it through would give an attacker
unlimited guesses for the price of knocking Redis over. Only forgetting the failures after a
success may fail quietly: the counters expire by themselves.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.errors import TooManyAttempts
from skilltree.platform.errors import DependencyUnavailable
from skilltree.platform.observability.logging import get_logger

FREE_FAILURES = {"email": 5, "ip": 20}
MAX_LOCK = timedelta(minutes=15)
RESET_AFTER = timedelta(hours=1)
# As long as the rate limiter's answer when it cannot count sign-ins (platform/http/rate_limit.py).
RETRY_AFTER_OUTAGE_SECONDS = 5

log = get_logger("skilltree.accounts")


class ThrottleUnavailable(DependencyUnavailable):
    """The counters cannot be read or written: the attempt is refused, not let through unchecked.
    One problem type with the rate limiter's, since to the client it is one condition."""

    type_slug = "rate-limiter-unavailable"
    title = "Sign-in temporarily unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Sign-in attempts cannot be counted right now, so none are accepted; retry soon.",
            retry_after_seconds=RETRY_AFTER_OUTAGE_SECONDS,
        )


def keys_for(email: str, ip: str) -> list[str]:
    return [f"email:{email}"] + ([f"ip:{ip}"] if ip else [])


async def ensure_not_locked(
    store: ThrottleStore, db: AsyncSession, keys: list[str], now: datetime
) -> None:
    """Refuse the attempt, before any password is checked, while a key is locked."""
    locked_until = [until for until in await store.locked_until(db, keys) if until > now]
    if locked_until:
        raise TooManyAttempts(retry_after=math.ceil((max(locked_until) - now).total_seconds()))


async def record_failure(
    store: ThrottleStore, db: AsyncSession, keys: list[str], now: datetime
) -> None:
    for key in keys:
        failures = await store.count_failure(db, key, now, forget_before=now - RESET_AFTER)
        free = FREE_FAILURES[key.split(":", 1)[0]]
        if failures > free:
            lock = min(timedelta(seconds=2 ** (failures - free - 1)), MAX_LOCK)
            await store.lock(db, key, now + lock)


async def record_success(store: ThrottleStore, db: AsyncSession, email: str) -> None:
    await store.clear(db, f"email:{email}")


class ThrottleStore(Protocol):
    """Failure counters per key. Every method takes the request's database session; the Redis
    store ignores it."""

    async def locked_until(self, db: AsyncSession, keys: list[str]) -> list[datetime]: ...

    async def count_failure(
        self, db: AsyncSession, key: str, now: datetime, *, forget_before: datetime
    ) -> int:
        """Add one failure, forgetting the older ones if the last was before `forget_before`,
        and return the count. Atomic: two concurrent failures count as two."""

    async def lock(self, db: AsyncSession, key: str, until: datetime) -> None: ...

    async def clear(self, db: AsyncSession, key: str) -> None: ...


class DatabaseThrottleStore:
    """Counters as rows of `login_throttles`, committed even when the sign-in fails (see
    InvalidCredentials.keeps_changes)."""

    async def locked_until(self, db: AsyncSession, keys: list[str]) -> list[datetime]:
        return [
            row.locked_until for row in await repository.get_throttles(db, keys) if row.locked_until
        ]

    async def count_failure(
        self, db: AsyncSession, key: str, now: datetime, *, forget_before: datetime
    ) -> int:
        return await repository.count_failure(db, key, now, forget_before=forget_before)

    async def lock(self, db: AsyncSession, key: str, until: datetime) -> None:
        await repository.lock_throttle(db, key, until)

    async def clear(self, db: AsyncSession, key: str) -> None:
        await repository.clear_throttle(db, key)


class RedisThrottleStore:
    """Counters in Redis hashes (`<prefix>throttle:<key>`: failures, last, locked_until), shared
    by every instance, so an attacker cannot spread guesses across them. Times come from the
    service's clock; a key's TTL only clears counters that can no longer matter."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def locked_until(self, db: AsyncSession, keys: list[str]) -> list[datetime]:
        async with _failing_closed("locked_until"), self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self._key(key), "locked_until")
            found = await pipe.execute()
        return [datetime.fromisoformat(value) for value in found if value]

    async def count_failure(
        self, db: AsyncSession, key: str, now: datetime, *, forget_before: datetime
    ) -> int:
        async with _failing_closed("count_failure"):
            failures = await self._redis.eval(
                _COUNT_FAILURE,
                1,
                self._key(key),
                now.timestamp(),
                forget_before.timestamp(),
                _KEEP_SECONDS,
            )
        return int(failures)

    async def lock(self, db: AsyncSession, key: str, until: datetime) -> None:
        async with _failing_closed("lock"):
            await self._redis.hset(self._key(key), "locked_until", until.isoformat())

    async def clear(self, db: AsyncSession, key: str) -> None:
        # The password was right: refusing the sign-in now would protect nothing, and the
        # failures left behind are forgotten after RESET_AFTER anyway.
        try:
            await self._redis.delete(self._key(key))
        except (RedisError, OSError) as error:
            log.warning("sign-in throttle not cleared", error=type(error).__name__)

    def _key(self, key: str) -> str:
        return f"{self._prefix}throttle:{key}"


@asynccontextmanager
async def _failing_closed(operation: str) -> AsyncIterator[None]:
    """Turn a Redis failure into ThrottleUnavailable (OSError too, as platform/cache.py does for
    the same client)."""
    try:
        yield
    except (RedisError, OSError) as error:
        log.warning("sign-in throttle unavailable", operation=operation, error=type(error).__name__)
        raise ThrottleUnavailable() from error


# A counter untouched for the reset window plus the longest lock can no longer lock anyone.
_KEEP_SECONDS = int((RESET_AFTER + MAX_LOCK).total_seconds())
# Read, reset-or-increment and write in one step, as the database upsert does.
_COUNT_FAILURE = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local failures
if last < tonumber(ARGV[2]) then
  failures = 1
  redis.call('HSET', KEYS[1], 'failures', 1, 'last', ARGV[1])
else
  failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('HSET', KEYS[1], 'last', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return failures
"""
