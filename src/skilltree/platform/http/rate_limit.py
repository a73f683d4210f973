"""Rate limiting: a sliding-window counter per policy and caller, in pure ASGI middleware.

Every request falls under one policy by its route class:

    auth   POST /v1/auth/...       strict, per client IP (guessing and sign-up floods)
    write  other unsafe methods    moderate, per credential (or IP when anonymous)
    read   GET and HEAD            generous, per credential (or IP when anonymous)

Health probes are exempt. A credential is the session cookie or the Authorization header,
hashed: the key is stable for one sign-in and reveals nothing in Redis.

The algorithm is the sliding-window counter: a weighted sum of the previous and the current
fixed window's counts, one small counter per window, no per-request list. Counters live in Redis
when `SKILLTREE_REDIS_URL` is set, so every instance shares one limit, and in process memory
otherwise (the `limits` library's storage and strategy). In Redis one script counts the hit and
returns both windows, which the `RateLimit` header needs: one round trip per request where
`limits`' own API takes two (docs/decisions/0008-hot-path-round-trips.md).

Leases (decision 0055). A Redis round trip per request is most of what the limiter costs, so
with a large quota an instance takes several requests of a caller's quota at once (up to
`SKILLTREE_RATE_LIMIT_LEASE_MAX`, never more than 1 % of the quota) and spends them in memory
for at most `SKILLTREE_RATE_LIMIT_LEASE_SECONDS`. Every request admitted was counted in Redis
before it was admitted, so the instances together never admit more than the quota counts; what
leasing changes is *when* a request is counted: up to a lease's lifetime early, so in any
window the limit holds to within one lease (LEASE_MAX − 1 requests) per instance and caller.
Unspent requests of an expired lease stay counted: a caller spread over instances may be
refused up to that many requests early, never late. Quotas under 200 are counted one by one.
While a caller's lease is refilled, its other requests wait for that one round trip (or the
next, which takes what they all need at once) instead of each making its own.

When the store fails (Redis down), reads and writes are let through — the limiter protects the
service, and refusing all traffic would be the outage it exists to prevent — while sign-in is
refused with 503: an attacker must not get unlimited password guesses by knocking Redis over.

Responses under a policy carry the IETF `RateLimit-Policy` and `RateLimit` headers
(draft-ietf-httpapi-ratelimit-headers); over the limit is a 429 problem with `Retry-After`.

Refused credentials (decision 0081). Counting per credential lets a client that invents a new
credential for each request start a new quota each time, and each such request costs a lookup
(a statement, a Redis read). So a credential refused with 401 is also counted against its
client IP under the "refused" policy (`SKILLTREE_RATE_LIMIT_REFUSED`); once an address has used
that up, its requests carrying a credential this process does not know (`known`: the principal
cache) are answered 429 before anything looks them up, until the window moves on. Callers this
process knows, and anonymous requests, go on as before, so the people behind one address
(a campus, an office) lose nothing to one of them guessing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import Counter
from redis.asyncio import Redis
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.config import RateLimitSettings, RedisSettings
from skilltree.platform.http.credentials import Credentials, credentials_in
from skilltree.platform.http.middleware import PROBE_PATHS, CorsMiddleware, HttpMiddleware
from skilltree.platform.http.problems import problem_response
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.observability.metrics import RATE_LIMIT_DECISIONS

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DECISION_HEADER_NAMES = frozenset({b"ratelimit", b"ratelimit-policy"})
# Callers with a lease kept at once per instance.
LEASES_KEPT = 100_000
# Where a decision already made for a request waits in its scope's state.
DECIDED = "skilltree.rate_limit_decision"
# The refusal a request gets, handed to the layer that sends it (with CORS when configured).
REFUSAL = "skilltree.rate_limit_refusal"
log = get_logger("skilltree.rate_limit")


@dataclass(frozen=True)
class Policy:
    name: str
    limit: RateLimitItem
    # What to do when the counter store cannot be reached: let the request through or not.
    fail_open: bool

    # Computed once: every response under the policy carries them.
    @functools.cached_property
    def window_seconds(self) -> int:
        return int(self.limit.get_expiry())

    @functools.cached_property
    def header(self) -> str:
        return f'"{self.name}";q={self.limit.amount};w={self.window_seconds}'

    @functools.cached_property
    def raw_header(self) -> tuple[bytes, bytes]:
        return (b"ratelimit-policy", self.header.encode("latin-1"))

    @functools.cached_property
    def quoted_name(self) -> bytes:
        return f'"{self.name}"'.encode("latin-1")


class Window(NamedTuple):
    """A caller's counters right after a hit: the previous and the current fixed window, each
    with the seconds until it expires. (A named tuple: one is built per request.)"""

    allowed: bool
    previous_count: int
    previous_expires_in: float
    current_count: int
    current_expires_in: float
    # Requests of the quota this hit took (more than one for a lease; 0 when refused).
    taken: int = 1

    # The limit's amount and window (seconds) are passed as the policy keeps them: this runs for
    # every request, and a `RateLimitItem` computes its window in Python each time it is asked.
    def remaining(self, amount: int, window: float) -> int:
        """What is left: the previous window's count weighs as much of it as has yet to pass."""
        weighted = self.previous_count * self.previous_expires_in / window
        return max(0, amount - math.floor(weighted + self.current_count))

    def reset_seconds(self, window: float) -> int:
        """Seconds until at least one more request is allowed: the next previous-window hit to
        weigh out, or the current window's end (never less than 1, as `Retry-After` counts)."""
        wait = math.inf  # no list of candidates: this runs for every request
        if self.previous_count:
            wait = _next_step(self.previous_expires_in, window / self.previous_count)
        if self.current_count:
            wait = min(wait, _next_step(self.current_expires_in, window))
        return 1 if wait == math.inf else max(1, math.ceil(wait))


def _next_step(expires_in: float, step: float) -> float:
    """Seconds to the next multiple of `step` before expiry: a counter just set to live two
    windows is a whole window, not zero, away from its next change."""
    return expires_in % step or step


class Counters(Protocol):
    async def hit(self, limit: RateLimitItem, *identifiers: str) -> Window:
        """Count one request if the limit allows it; the window as it is afterwards."""
        ...


class InProcessCounters:
    """Counters in this process's memory (the embedded default): `limits`' storage."""

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._strategy = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, limit: RateLimitItem, *identifiers: str) -> Window:
        allowed = await self._strategy.hit(limit, *identifiers)
        window = await self._storage.get_sliding_window(
            limit.key_for(*identifiers), limit.get_expiry()
        )
        return Window(allowed, *window)


# Counts a hit and reports the window, atomically, in one round trip. The same algorithm as
# `limits`' sliding-window counter: the current window's key lives for two windows and, once its
# own window has passed, is renamed to be the previous one. Times are in milliseconds.
HIT_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
local wanted = tonumber(ARGV[3]) or 1

local current_ttl = redis.call('pttl', KEYS[2])
if current_ttl > 0 and current_ttl < window then
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + window)
end

local previous = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = math.max(redis.call('pttl', KEYS[1]), 0)
local current = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = math.max(redis.call('pttl', KEYS[2]), 0)

local taken = math.min(wanted, limit - math.floor(previous * previous_ttl / window) - current)
if taken > 0 then
    if redis.call('exists', KEYS[2]) == 1 then
        redis.call('incrby', KEYS[2], taken)
    else
        redis.call('set', KEYS[2], taken, 'PX', window * 2)
        current_ttl = window * 2
    end
    current = current + taken
else
    taken = 0
end
return {taken, previous, previous_ttl, current, current_ttl}
"""


class RedisCounters:
    """Counters in Redis, shared by every instance: one script call per request."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._hit = redis.register_script(HIT_SCRIPT)
        self._prefix = f"{key_prefix}ratelimit:"

    async def hit(self, limit: RateLimitItem, *identifiers: str, count: int = 1) -> Window:
        """Take `count` requests of the quota, or as many as are left (none: refused)."""
        key = self._prefix + limit.key_for(*identifiers)
        taken, previous, previous_ms, current, current_ms = await self._hit(
            keys=[f"{key}:previous", f"{key}:current"],
            args=[limit.amount, limit.get_expiry(), count],
        )
        return Window(
            taken > 0, previous, previous_ms / 1000, current, current_ms / 1000, taken=taken
        )


class Lease:
    """Requests of one caller's quota taken from Redis and not yet spent, until `expires_at`."""

    __slots__ = ("expires_at", "left", "limit", "taken_at", "window")

    def __init__(
        self, limit: RateLimitItem, left: int, window: Window, taken_at: float, expires_at: float
    ) -> None:
        # Held so that the limit's id, which keys the lease, is not another limit's meanwhile.
        self.limit = limit
        self.left = left
        self.window = window  # as Redis reported it when the lease was taken
        self.taken_at = taken_at
        self.expires_at = expires_at

    def spend(self, now: float) -> Window:
        """One request from the lease, and the window as the caller sees it: what is leased
        but unspent is not used (so `remaining` counts it), and the expiries ran on."""
        self.left -= 1
        elapsed = now - self.taken_at
        window = self.window
        return Window(
            window.allowed,
            window.previous_count,
            max(0.0, window.previous_expires_in - elapsed),
            window.current_count - self.left,
            max(0.0, window.current_expires_in - elapsed),
            1,
        )


# A caller's lease by the limit's id (a limit's own hash is computed in Python, per request)
# and the caller's identifiers.
LeaseKey = tuple[int, tuple[str, ...]]


class Line:
    """The requests of one caller waiting for quota while its lease is refilled, and the task
    making the round trips. Without it, every request that found the lease spent made a round
    trip of its own: at a thousand connections, hundreds at once, queueing for Redis
    connections for up to the pool's timeout (seconds) and failing as the store unavailable."""

    __slots__ = ("trips", "waiting")

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[Window]] = []
        self.trips: asyncio.Task[None] | None = None


class LeasedCounters:
    """Redis counters taken a lease at a time: one round trip for many requests of a caller
    with a large quota (see the module's docstring for the bound this keeps)."""

    def __init__(
        self,
        counters: RedisCounters,
        *,
        lease_max: int,
        lease_seconds: float,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._lease_max = lease_max
        self._lease_seconds = lease_seconds
        self._timer = timer
        # A plain dict read with one clock reading per request (a TTL cache reads the clock on
        # every access); expired leases are dropped when it fills up.
        self._leases: dict[LeaseKey, Lease] = {}
        # Callers whose lease is spent, with the requests waiting for its refill.
        self._lines: dict[LeaseKey, Line] = {}

    def lease_size(self, limit: RateLimitItem) -> int:
        return max(1, min(self._lease_max, limit.amount // 100))

    def spend(self, limit: RateLimitItem, *identifiers: str) -> Window | None:
        """A request from the caller's lease, with no round trip and nothing awaited, when one
        is left; else None (`hit` then counts it)."""
        return self._spend((id(limit), identifiers))

    async def hit(self, limit: RateLimitItem, *identifiers: str) -> Window:
        size = self.lease_size(limit)
        if size == 1:
            return await self._counters.hit(limit, *identifiers)
        key = (id(limit), identifiers)
        spent = self._spend(key)
        if spent is not None:
            return spent
        # The lease is spent: wait for the caller's next round trip, one at a time per caller.
        answer: asyncio.Future[Window] = asyncio.get_running_loop().create_future()
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = Line()
            line.waiting.append(answer)
            line.trips = asyncio.create_task(self._refill(key, line, limit, identifiers, size))
        else:
            line.waiting.append(answer)
        return await answer

    def _spend(self, key: LeaseKey) -> Window | None:
        """A request from the caller's lease, when it has one left that has not expired."""
        lease = self._leases.get(key)
        if lease is not None and lease.left > 0:
            now = self._timer()
            if now < lease.expires_at:
                return lease.spend(now)
        return None

    async def _refill(
        self, key: LeaseKey, line: Line, limit: RateLimitItem, identifiers: tuple[str, ...],
        size: int,
    ) -> None:  # fmt: skip
        """Round trips for the requests in the caller's line until none is left waiting. A
        trip takes what the requests waiting when it leaves need, and a lease on top (as one
        request's trip would: up to `size`, unspent at most `size` − 1); those that arrive
        while it is away are served from what it brings back, or by the next trip."""
        waiting: list[asyncio.Future[Window]] = []
        try:
            while line.waiting:
                waiting, line.waiting = line.waiting, []
                waiting = [answer for answer in waiting if not self._answer_from_lease(answer, key)]
                if not waiting:
                    continue
                try:
                    window = await self._counters.hit(
                        limit, *identifiers, count=len(waiting) + size - 1
                    )
                except Exception as error:  # each waiting request raises it, as its own would
                    # Those that came while the trip was away too: another trip would most
                    # likely fail as well, and make them wait twice the store's timeout.
                    waiting += line.waiting
                    line.waiting = []
                    for answer in waiting:
                        if not answer.done():
                            answer.set_exception(error)
                    continue
                self._hand_out(key, limit, window, waiting)
        finally:
            del self._lines[key]
            for answer in (*waiting, *line.waiting):  # only if the trips were cancelled
                answer.cancel()

    def _answer_from_lease(self, answer: asyncio.Future[Window], key: LeaseKey) -> bool:
        """Whether the request is settled without a trip: gone (cancelled) or served."""
        if answer.done():
            return True
        spent = self._spend(key)
        if spent is None:
            return False
        answer.set_result(spent)
        return True

    def _hand_out(
        self,
        key: LeaseKey,
        limit: RateLimitItem,
        window: Window,
        waiting: list[asyncio.Future[Window]],
    ) -> None:
        """What a trip took, to the requests it was taken for in the order they came, and the
        rest kept as the caller's lease. Requests beyond what the quota had left are refused
        with the window as Redis reported it, as their own trips would have been."""
        if window.taken <= 1 and len(waiting) == 1:
            if not waiting[0].done():
                waiting[0].set_result(window)  # refused, or the quota's last request
            return
        now = self._timer()
        # An unexpired lease left from before (spent by now, or there would be no trip).
        kept = self._leases.get(key)
        extra = kept.left if kept is not None and now < kept.expires_at else 0
        lease = Lease(limit, window.taken + extra, window, now, now + self._lease_seconds)
        if key not in self._leases and len(self._leases) >= LEASES_KEPT:
            self._drop_expired(now)
        self._leases[key] = lease
        refused = window._replace(allowed=False, taken=0)
        for answer in waiting:
            if answer.done():
                continue  # cancelled while waiting: its request stays in the lease
            answer.set_result(lease.spend(now) if lease.left > 0 else refused)

    def _drop_expired(self, now: float) -> None:
        self._leases = {k: v for k, v in self._leases.items() if now < v.expires_at}
        if len(self._leases) >= LEASES_KEPT:
            self._leases.clear()  # unspent requests stay counted: refused early, never late


class Decision(NamedTuple):
    policy: Policy
    allowed: bool
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": self.policy.header,
            "RateLimit": f'"{self.policy.name}";r={self.remaining};t={self.reset_seconds}',
        }

    def raw_headers(self) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        """`headers()` as a response's raw headers, from the policy's precomputed parts."""
        policy = self.policy
        value = b"%s;r=%d;t=%d" % (policy.quoted_name, self.remaining, self.reset_seconds)
        return policy.raw_header, (b"ratelimit", value)


class StoreUnavailable(Exception):
    """The counter store did not answer."""


class RateLimiter:
    """The policies and their counters."""

    def __init__(
        self,
        settings: RateLimitSettings,
        counters: Counters,
        *,
        session_cookie: str,
    ) -> None:
        self._counters = counters
        self._session_cookie = session_cookie
        # Decisions' labelled counters by policy, (limited, allowed): `labels()` costs
        # microseconds.
        self._decisions: dict[str, tuple[Counter, Counter]] = {}
        # A request from a caller's lease, decided without a round trip (leased counters only).
        self._spend = counters.spend if isinstance(counters, LeasedCounters) else None
        self.policies = {
            "auth": Policy("auth", parse(settings.auth), fail_open=False),
            "write": Policy("write", parse(settings.write), fail_open=True),
            "read": Policy("read", parse(settings.read), fail_open=True),
            "refused": Policy("refused", parse(settings.refused), fail_open=True),
        }
        # Addresses whose refused credentials used up their quota, and until when (this
        # process's monotonic clock); bounded like the leases.
        self._refusing: dict[str, float] = {}

    def policy_for(self, scope: Scope) -> Policy | None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in PROBE_PATHS or method == "OPTIONS":
            return None
        if method not in SAFE_METHODS:
            return self.policies["auth" if path.startswith("/v1/auth/") else "write"]
        return self.policies["read"]

    def caller_key(self, scope: Scope, policy: Policy, credentials: Credentials | None) -> str:
        """Per client IP for sign-in; per credential (hashed) otherwise, IP when anonymous.
        `credentials` are the request's, read once by the layer asking (`credentials`)."""
        if policy.name == "auth" or credentials is None:
            return f"ip:{_address(scope)}"
        credential = credentials.authorization or credentials.session or ""
        return "cred:" + hashlib.sha256(credential.encode("latin-1")).hexdigest()[:32]

    def refusing_for(self, scope: Scope) -> int | None:
        """Seconds before this request's address may present credentials unknown here again;
        None when it may now."""
        address = _address(scope)
        until = self._refusing.get(address)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._refusing[address]
            return None
        return math.ceil(left)

    async def count_refused(self, scope: Scope) -> None:
        """Count a credential this request presented and was refused for against its address;
        over the quota, remember the address until the window lets it go on."""
        try:
            decision = await self.check(self.policies["refused"], f"ip:{_address(scope)}")
        except StoreUnavailable:
            return  # uncounted, as reads are let through when the store fails
        if decision.allowed:
            return
        if len(self._refusing) >= LEASES_KEPT:
            now = time.monotonic()
            self._refusing = {key: at for key, at in self._refusing.items() if at > now}
        self._refusing[_address(scope)] = time.monotonic() + decision.reset_seconds

    def credentials(self, scope: Scope) -> Credentials | None:
        """The request's credentials, as the application reads them."""
        return credentials_in(scope, self._session_cookie)

    async def decide(
        self, policy: Policy, scope: Scope, credentials: Credentials | None
    ) -> Decision:
        """Count the request under `policy`, logged and counted in the metrics; raises
        StoreUnavailable (logged and counted as unchecked) when the store did not answer."""
        key = self.caller_key(scope, policy, credentials)
        # Most requests of a busy caller are spent from its lease: decided with nothing awaited.
        leased = self._spend(policy.limit, policy.name, key) if self._spend else None
        try:
            decision = (
                _decision(policy, leased) if leased is not None else await self.check(policy, key)
            )
        except StoreUnavailable as error:
            log.warning("rate limit store unavailable", policy=policy.name, error=str(error))
            RATE_LIMIT_DECISIONS.labels(policy.name, "unchecked").inc()
            raise
        counted = self._decisions.get(policy.name)
        if counted is None:
            counted = self._decisions[policy.name] = (
                RATE_LIMIT_DECISIONS.labels(policy.name, "limited"),
                RATE_LIMIT_DECISIONS.labels(policy.name, "allowed"),
            )
        counted[decision.allowed].inc()
        return decision

    async def check(self, policy: Policy, key: str) -> Decision:
        try:
            window = await self._counters.hit(policy.limit, policy.name, key)
        except Exception as error:  # each store raises its client's own errors
            raise StoreUnavailable(type(error).__name__) from error
        return _decision(policy, window)


def _decision(policy: Policy, window: Window) -> Decision:
    limit = policy.limit
    seconds = policy.window_seconds
    return Decision(
        policy,
        window.allowed,
        window.remaining(limit.amount, seconds),
        window.reset_seconds(seconds),
    )


def mark_decided(scope: Scope, decision: Decision) -> None:
    """Hand a decision already made for this request to the limiter's middleware."""
    scope.setdefault("state", {})[DECIDED] = decision


def create_counters(
    settings: RedisSettings, redis: Redis | None, limits: RateLimitSettings | None = None
) -> Counters:
    """In-process counters, or counters in Redis over the app's own connection pool (taken a
    lease at a time for large quotas when `limits` allows leases)."""
    if settings.url is None or redis is None:
        return InProcessCounters()
    counters = RedisCounters(redis, settings.key_prefix)
    if limits is None or limits.lease_max <= 1:
        return counters
    return LeasedCounters(counters, lease_max=limits.lease_max, lease_seconds=limits.lease_seconds)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class RateLimitMiddleware(HttpMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        cors: dict[str, Any] | None = None,
        known: Callable[[Scope, Credentials], bool] | None = None,
    ) -> None:
        super().__init__(app)
        self.limiter = limiter
        # Whether this process knows the caller behind the request's credential, with no I/O
        # (refused credentials: see the module's docstring); None knows nobody.
        self.known = known
        # The refusals sit outside the stack's CORS layer: a browser script on an allowed
        # origin may read a 429 and its Retry-After (which CORS exposes for it) as it reads
        # any other answer, through the same class and options as the stack's CORS.
        self.refuse: ASGIApp = (
            _send_refusal if cors is None else CorsMiddleware(_send_refusal, **cors)
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self.limiter.policy_for(scope)
        if policy is None:
            await self.app(scope, receive, send)
            return
        credentials = None if policy.name == "auth" else self.limiter.credentials(scope)
        if credentials is not None and (wait := self._refusing(scope, credentials)) is not None:
            scope[REFUSAL] = _refused_credentials(wait, scope["path"])
            await self.refuse(scope, receive, send)
            return
        # The fast path (fast_path.py) may have counted this request already: not twice.
        decided: Decision | None = scope.get("state", {}).pop(DECIDED, None)
        if decided is not None:
            decision = decided
        else:
            try:
                decision = await self.limiter.decide(policy, scope, credentials)
            except StoreUnavailable:
                if policy.fail_open:
                    await self.app(scope, receive, send)
                    return
                scope[REFUSAL] = _unavailable(scope["path"])
                await self.refuse(scope, receive, send)
                return
        if not decision.allowed:
            scope[REFUSAL] = _over_limit(decision, scope["path"])
            await self.refuse(scope, receive, send)
            return
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _add_decision_headers(message, decision)
            await send(message)

        await self.app(scope, receive, send_with_headers)
        if credentials is not None and status == 401:
            await self.limiter.count_refused(scope)

    def _refusing(self, scope: Scope, credentials: Credentials) -> int | None:
        """Seconds to wait when this request's address may not present a credential unknown
        here now; None when it may go on."""
        wait = self.limiter.refusing_for(scope)
        if wait is None or (self.known is not None and self.known(scope, credentials)):
            return None
        return wait


def _add_decision_headers(start: Message, decision: Decision) -> None:
    """Set the decision's headers on a response start. A route never sets them itself, so
    they are appended as raw bytes (precomputed per policy) rather than through a
    `MutableHeaders`; should one be there, `MutableHeaders` replaces it as it always did."""
    raw = start["headers"] = list(start.get("headers", ()))
    if any(name in DECISION_HEADER_NAMES for name, _ in raw):
        MutableHeaders(raw=raw).update(decision.headers())
        return
    raw.extend(decision.raw_headers())


async def _send_refusal(scope: Scope, receive: Receive, send: Send) -> None:
    response: Response = scope.pop(REFUSAL)
    await response(scope, receive, send)


def _over_limit(decision: Decision, path: str) -> Response:
    return problem_response(
        429,
        title="Too many requests",
        type_="/problems/rate-limited",
        instance=path,
        detail=(
            f"Over the {decision.policy.name!r} limit of {decision.policy.limit.amount} requests "
            f"per {decision.policy.window_seconds} s; try again in {decision.reset_seconds} s."
        ),
        headers=decision.headers() | {"Retry-After": str(decision.reset_seconds)},
    )


def _refused_credentials(wait: int, path: str) -> Response:
    return problem_response(
        429,
        title="Too many refused credentials",
        type_="/problems/credentials-refused",
        instance=path,
        detail=(
            "Too many requests from this address carried credentials that were refused: "
            f"those this server does not know are refused for {wait} s more."
        ),
        headers={"Retry-After": str(wait)},
    )


def _unavailable(path: str) -> Response:
    return problem_response(
        503,
        title="Sign-in temporarily unavailable",
        type_="/problems/rate-limiter-unavailable",
        instance=path,
        detail="Sign-in attempts cannot be counted right now, so none are accepted; retry soon.",
        headers={"Retry-After": "5"},
    )
