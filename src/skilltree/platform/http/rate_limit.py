"""Rate limiting: a sliding-window counter per policy and caller, in pure ASGI middleware.

Every request falls under one policy by its route class:

    auth   POST /v1/auth/...       strict, per client IP (guessing and sign-up floods)
    write  other unsafe methods    moderate, per credential (or IP when anonymous)
    read   GET and HEAD            generous, per credential (or IP when anonymous)

Health probes are exempt. A credential is the session cookie or the Authorization header,
hashed: the key is stable for one sign-in and reveals nothing in Redis.

The counting itself is the `limits` library (sliding-window counter: a weighted sum of the
previous and current fixed windows, one small key per window, no per-request list). Counters
live in Redis when `SKILLTREE_REDIS_URL` is set, so every instance shares one limit, and in
process memory otherwise.

When the store fails (Redis down), reads and writes are let through — the limiter protects the
service, and refusing all traffic would be the outage it exists to prevent — while sign-in is
refused with 503: an attacker must not get unlimited password guesses by knocking Redis over.

Responses under a policy carry the IETF `RateLimit-Policy` and `RateLimit` headers
(draft-ietf-httpapi-ratelimit-headers); over the limit is a 429 problem with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, cast

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from packaging.version import Version
from redis.asyncio import Redis
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.config import RateLimitSettings, RedisSettings
from skilltree.platform.http.middleware import PROBE_PATHS, HttpMiddleware
from skilltree.platform.http.problems import problem_response
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.observability.metrics import RATE_LIMIT_DECISIONS

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = get_logger("skilltree.rate_limit")


@dataclass(frozen=True)
class Policy:
    name: str
    limit: RateLimitItem
    # What to do when the counter store cannot be reached: let the request through or not.
    fail_open: bool

    @property
    def window_seconds(self) -> int:
        return int(self.limit.get_expiry())

    @property
    def header(self) -> str:
        return f'"{self.name}";q={self.limit.amount};w={self.window_seconds}'


@dataclass(frozen=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": self.policy.header,
            "RateLimit": f'"{self.policy.name}";r={self.remaining};t={self.reset_seconds}',
        }


class StoreUnavailable(Exception):
    """The counter store did not answer."""


class RateLimiter:
    """The policies and their counters."""

    def __init__(
        self,
        settings: RateLimitSettings,
        storage: Storage,
        *,
        session_cookie: str,
    ) -> None:
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._cookie_prefix = f"{session_cookie}=".encode()
        self._storage = storage
        self.policies = {
            "auth": Policy("auth", parse(settings.auth), fail_open=False),
            "write": Policy("write", parse(settings.write), fail_open=True),
            "read": Policy("read", parse(settings.read), fail_open=True),
        }

    def policy_for(self, scope: Scope) -> Policy | None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in PROBE_PATHS or method == "OPTIONS":
            return None
        if method not in SAFE_METHODS:
            return self.policies["auth" if path.startswith("/v1/auth/") else "write"]
        return self.policies["read"]

    def caller_key(self, scope: Scope, policy: Policy) -> str:
        """Per client IP for sign-in; per credential (hashed) otherwise, IP when anonymous."""
        ip = scope["client"][0] if scope.get("client") else "unknown"
        if policy.name == "auth":
            return f"ip:{ip}"
        credential = self._credential(scope)
        if credential is None:
            return f"ip:{ip}"
        return "cred:" + hashlib.sha256(credential).hexdigest()[:32]

    def _credential(self, scope: Scope) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return bytes(value)
            if name == b"cookie" and self._cookie_prefix in value:
                return bytes(value.split(self._cookie_prefix, 1)[1].split(b";", 1)[0])
        return None

    async def check(self, policy: Policy, key: str) -> Decision:
        try:
            allowed = await self._strategy.hit(policy.limit, policy.name, key)
            stats = await self._strategy.get_window_stats(policy.limit, policy.name, key)
        except Exception as error:  # the storages raise their client's own errors
            raise StoreUnavailable(type(error).__name__) from error
        # The same clock `limits` reads (time.time), so the difference is the real wait.
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(policy, allowed, stats.remaining, reset)


class RedisPyStorage(RedisStorage):
    """limits' Redis storage, knowing of redis-py only.

    When a storage is created, limits imports every Redis client it can drive (redis-py, coredis,
    valkey) that is installed, whichever one it uses; coredis, which comes with limits, would
    stay resident for nothing (~8 MB per worker). Listing redis-py alone keeps it out.
    """

    # Declared as limits declares it (an attribute of each storage, not a ClassVar).
    DEPENDENCIES: dict[str, Version | None] = {"redis": Version("5.2.0")}  # noqa: RUF012


def create_storage(settings: RedisSettings, redis: Redis | None) -> Storage:
    """In-process counters, or counters in Redis over the app's own connection pool."""
    if settings.url is None or redis is None:
        return MemoryStorage()
    return RedisPyStorage(
        f"async+{settings.url}",
        implementation="redispy",
        key_prefix=f"{settings.key_prefix}ratelimit",
        wrap_exceptions=True,
        # Passed through to redis-py; limits' annotation only lists scalar options.
        connection_pool=cast(Any, redis.connection_pool),
    )


class RateLimitMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        super().__init__(app)
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self.limiter.policy_for(scope)
        if policy is None:
            await self.app(scope, receive, send)
            return
        try:
            decision = await self.limiter.check(policy, self.limiter.caller_key(scope, policy))
        except StoreUnavailable as error:
            log.warning("rate limit store unavailable", policy=policy.name, error=str(error))
            RATE_LIMIT_DECISIONS.labels(policy.name, "unchecked").inc()
            if policy.fail_open:
                await self.app(scope, receive, send)
                return
            await _refuse_unavailable(scope, receive, send)
            return
        RATE_LIMIT_DECISIONS.labels(policy.name, "allowed" if decision.allowed else "limited").inc()
        if not decision.allowed:
            await _refuse_over_limit(decision, scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(decision.headers())
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse_over_limit(
    decision: Decision, scope: Scope, receive: Receive, send: Send
) -> None:
    response = problem_response(
        429,
        title="Too many requests",
        type_="/problems/rate-limited",
        detail=(
            f"Over the {decision.policy.name!r} limit of {decision.policy.limit.amount} requests "
            f"per {decision.policy.window_seconds} s; try again in {decision.reset_seconds} s."
        ),
        headers=decision.headers() | {"Retry-After": str(decision.reset_seconds)},
    )
    await response(scope, receive, send)


async def _refuse_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(
        503,
        title="Sign-in temporarily unavailable",
        type_="/problems/rate-limiter-unavailable",
        detail="Sign-in attempts cannot be counted right now, so none are accepted; retry soon.",
        headers={"Retry-After": "5"},
    )
    await response(scope, receive, send)
