"""The cache: ready-to-send bytes by key, in Redis in production and in process memory otherwise.

Two storages, one set of rules. With `SKILLTREE_REDIS_URL` set, the values and the namespace
tokens live in Redis through the `cashews` library, shared by every instance (`InRedis`). Without
it (the embedded default) they live in this process alone (`InProcess`): the values in a
`LocalCopies` (least recently used out first, bounded in entries and in bytes), the tokens
beside them. The two are one `Storage` interface, side by side in platform/cache_storage.py;
`Cache`, here, holds the rules skilltree relies on, once for both (decision 0079):

Invalidation by namespace. Every entry names the namespaces it was computed from ("roadmap:backend",
"learner:42"), and its key carries each namespace's current token. A write marks its namespaces
stale (`stale_on_commit`); once the unit of work commits, each gets a new token, so every
entry computed from it is unreachable at once — one SET per namespace, however many entries, no
key scans — and expires on its own TTL. A reader that computed from data older than the write
stores its result under the old token, where no one looks: the write always wins.

Local copies. With Redis, each process also keeps the values it read or wrote lately in its own
memory, under the same versioned key (`LocalCopies`). A key names the namespace tokens its value
was computed from, so a copy can never be staler than the tokens it is looked up by. Without
Redis the `LocalCopies` are the cache itself: each value is kept once.

Pushed invalidation. Every invalidation is also announced on the broadcast channel
"cache.namespaces" (platform/broadcast.py, the fan-out the principal cache uses), after the new
tokens are stored. A process that listens (`listen`, started by the app's lifespan) keeps the
tokens it read (`RememberedTokens`) and forgets a namespace's as the announcement arrives, so a
local hit needs no Redis round trip at all. Pub/sub is at-most-once, so the remembered tokens are
trusted only while the broadcaster says every message reaches this process (`connected`), only from
its current connection (`epoch`), and for at most `CacheSettings.token_trust_seconds`, after which
one MGET reads them again: a lost announcement leaves an entry stale for no longer than that.
Without listening (commands, tests of one cache) every read checks the tokens in Redis, as before.
Decision 0055.

In process memory. Without Redis the tokens are this process's own and no other process reads or
changes them: they are authoritative, so every read is built from them with no trust to earn — no
pub/sub, epochs or trust timeout — and `local_entry` (the fast path's lookup) answers whenever the
value is kept. `invalidate` drops the tokens without awaiting anything (the next read makes new
ones, never one a namespace had before), before the writer's request answers, so the very next read
in this process sees the write; there is nothing to announce, as nothing outside this process can
hear it. What that leaves: a write made by another process (a command-line import) reaches that
process's own cache only, so the server serves the entry until its TTL; and so a server without
Redis runs one worker (`skilltree serve` refuses more). See docs/performance.md, "Invalidation",
and decision 0076.

Stampede protection. When many requests miss the same key together, one recomputes it while the
others wait, then read what it stored: waiting in this process on an asyncio event, and across
instances on a short Redis lock. A result computed for one caller only (a private roadmap) is
returned to that caller and never stored; the waiters then compute their own.

Failure. A Redis that is down or slow never fails a request: every cache operation that fails
counts in `stats.errors` (and the `skilltree_cache_errors_total` metric) and the request reads
the database instead. The first failure after a success logs a warning, and the first success
after failures logs that the cache is back. See docs/performance.md, "Caching".
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.broadcast import Broadcaster
from skilltree.platform.cache_storage import (
    BACKEND_ERRORS,
    CHANNEL,
    InProcess,
    InRedis,
    LocalCopies,
    LocalCopy,
    Storage,
)
from skilltree.platform.config import CacheSettings, RedisSettings
from skilltree.platform.db import after_commit
from skilltree.platform.observability import metrics
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.replica import replica_staleness

# The storage's names are the cache's too: callers import them from here.
__all__ = [
    "CHANNEL",
    "Cache",
    "CacheStats",
    "Computed",
    "InProcess",
    "InRedis",
    "Key",
    "LocalCopies",
    "LocalCopy",
    "Storage",
    "stale_on_commit",
]

log = get_logger("skilltree.cache")

STALE_NAMESPACES = "skilltree.stale_namespaces"


@dataclass(frozen=True)
class Key:
    """An entry's name and the namespaces whose change makes it stale."""

    name: str
    namespaces: tuple[str, ...]


@dataclass(frozen=True)
class Computed:
    value: bytes
    # False: computed for this caller only (personal or access-controlled); never stored.
    shareable: bool = True


@dataclass
class CacheStats:
    """Counters of this cache object; the process-wide ones are metrics (observability)."""

    hits: int = 0
    # Hits answered from this process's local copy (counted in `hits` too).
    local_hits: int = 0
    misses: int = 0
    recomputes: int = 0
    # Requests that waited for another request's recompute instead of recomputing.
    waits: int = 0
    # Failed cache operations (Redis down or slow); each request concerned read the database.
    errors: int = 0


Compute = Callable[[], Awaitable[Computed]]


def stale_on_commit(session: AsyncSession, *namespaces: str) -> None:
    """Mark namespaces changed by this unit of work; they are invalidated once it commits."""
    session.info.setdefault(STALE_NAMESPACES, set()).update(namespaces)


class Cache:
    def __init__(
        self, storage: Storage, *, prefix: str, lock_seconds: float, enabled: bool = True
    ) -> None:
        self._storage = storage
        # The values this process keeps: Redis' local copies, or in process the cache itself.
        self._local = storage.local
        self._prefix = prefix
        self._lock_seconds = lock_seconds
        self.enabled = enabled
        self.stats = CacheStats()
        self._hits_counted = metrics.CACHE_LOOKUPS.labels("hit")  # once: labels() costs µs
        self._available = True
        # Keys this process is recomputing now: the requests missing them too wait here.
        self._recomputing: dict[str, asyncio.Event] = {}

    @classmethod
    def from_settings(
        cls, cache: CacheSettings, redis: RedisSettings, broadcaster: Broadcaster | None = None
    ) -> Cache:
        """Redis when SKILLTREE_REDIS_URL is set, process memory otherwise; nothing connects
        until first use. With Redis, invalidations are announced through `broadcaster`, or with
        none given, through a publisher of the cache's own (commands, workers)."""
        prefix = f"{redis.key_prefix}cache:"
        storage: Storage
        if redis.url is None:
            storage = InProcess.from_settings(cache)
        else:
            storage = InRedis.from_settings(cache, redis, prefix, broadcaster)
        return cls(storage, prefix=prefix, lock_seconds=cache.lock_seconds, enabled=cache.enabled)

    async def fetch(self, key: Key, compute: Compute, ttl_seconds: int) -> bytes:
        """The cached value, or `compute()`'s — computed once however many requests miss it."""
        if not self.enabled:
            return (await compute()).value
        stored = await self._stored_key(key)
        if stored is None:  # the cache is unreachable: straight to the database
            metrics.CACHE_LOOKUPS.labels("bypassed").inc()
            return (await compute()).value
        staleness = replica_staleness()
        if staleness is not None:
            # Computed from a replica, which may not hold a write whose invalidation already
            # happened: kept apart from the primary's entries (a client reading its own write
            # from the primary never gets it) and for no longer than the replica may lag.
            stored = f"replica:{stored}"
            ttl_seconds = max(1, min(ttl_seconds, math.ceil(staleness)))
        cached = await self._get(stored, ttl_seconds)
        if cached is not None:
            self._hit()
            return cached
        self.stats.misses += 1
        metrics.CACHE_LOOKUPS.labels("miss").inc()
        return await self._recompute_once(stored, compute, ttl_seconds)

    def local_entry(self, key: Key) -> LocalCopy | None:
        """The local copy of `key`'s current value when it can be trusted without asking Redis
        (in process memory, always; with Redis, while its tokens are known and announcements
        flow), counted as a hit; else None."""
        if not self.enabled or self._local is None:
            return None
        versions = self._storage.trusted_versions(key.namespaces)
        if versions is None:
            return None
        copy = self._local.entry(self._versioned(key, versions))
        if copy is not None:
            self.stats.local_hits += 1
            self._hit()
        return copy

    async def invalidate(self, namespaces: Iterable[str]) -> None:
        """Make every entry computed from these namespaces unreachable, here and, once the
        announcement arrives, in every other instance's memory."""
        names = sorted(set(namespaces))
        if not names or not self.enabled:
            return
        try:
            await self._storage.renew(names)
        except BACKEND_ERRORS as error:
            # Entries of these namespaces live on until their TTL: the reason TTLs stay bounded.
            self._failed("invalidate", error)

    async def listen(self, broadcaster: Broadcaster) -> None:
        """Hear every instance's invalidations, so local hits need no Redis round trip."""
        await self._storage.listen(broadcaster)

    def listening(self) -> bool:
        """Whether announcements reach this process now (and remembered tokens are trusted)."""
        return self._storage.listening()

    @property
    def heard(self) -> int:
        """Invalidations announced by any instance and received here."""
        return self._storage.heard()

    def bind(self, session: AsyncSession) -> None:
        """Invalidate what this unit of work marks stale (`stale_on_commit`) once it commits."""

        async def invalidate_marked() -> None:
            # Most units of work mark nothing: then there is nothing to await.
            marked = session.info.pop(STALE_NAMESPACES, None)
            if marked:
                await self.invalidate(marked)

        after_commit(session, invalidate_marked)

    async def close(self) -> None:
        await self._storage.close()

    def _versioned(self, key: Key, versions: str) -> str:
        return f"{self._prefix}{key.name}@{versions}"

    async def _stored_key(self, key: Key) -> str | None:
        """The key with each namespace's current token; None when the cache cannot be read."""
        versions = self._storage.trusted_versions(key.namespaces)
        if versions is None:
            try:
                versions = await self._storage.versions(key.namespaces)
            except BACKEND_ERRORS as error:
                self._failed("read", error)
                return None
            if versions is None:
                return None
            self._succeeded()
        return self._versioned(key, versions)

    async def _get(self, stored: str, ttl_seconds: int) -> bytes | None:
        if self._local is not None and (copy := self._local.get(stored)) is not None:
            self.stats.local_hits += 1
            return copy
        try:
            value = await self._storage.read(stored)
        except BACKEND_ERRORS as error:
            self._failed("read", error)
            return None
        if value is not None:
            self._keep_locally(stored, value, ttl_seconds)
        return value

    def _keep_locally(self, stored: str, value: bytes, ttl_seconds: int) -> None:
        if self._local is not None:
            self._local.put(stored, value, ttl_seconds)

    async def _recompute_once(self, stored: str, compute: Compute, ttl_seconds: int) -> bytes:
        running = self._recomputing.get(stored)
        if running is not None:  # another request of this process is on it
            self._waited()
            with suppress(TimeoutError):
                await asyncio.wait_for(running.wait(), self._lock_seconds)
            return await self._read_after_waiting(stored, compute, ttl_seconds)
        done = self._recomputing[stored] = asyncio.Event()
        try:
            lock = await self._lock(stored)
            if lock is False:  # another instance is on it
                self._waited()
                await self._wait_unlocked(stored)
                return await self._read_after_waiting(stored, compute, ttl_seconds)
            try:
                return await self._compute_and_store(stored, compute, ttl_seconds)
            finally:
                if isinstance(lock, str):
                    await self._unlock(stored, lock)
        finally:
            done.set()
            del self._recomputing[stored]

    async def _read_after_waiting(self, stored: str, compute: Compute, ttl_seconds: int) -> bytes:
        cached = await self._get(stored, ttl_seconds)
        if cached is not None:
            self._hit()
            return cached
        # Nothing stored: the result was personal, the recompute failed, or the wait timed out.
        return await self._compute_and_store(stored, compute, ttl_seconds)

    async def _compute_and_store(self, stored: str, compute: Compute, ttl_seconds: int) -> bytes:
        computed = await compute()
        self.stats.recomputes += 1
        metrics.CACHE_RECOMPUTES.inc()
        if not computed.shareable:
            return computed.value
        try:
            await self._storage.write(stored, computed.value, ttl_seconds)
        except BACKEND_ERRORS as error:
            self._failed("write", error)
        else:
            # In process, this copy is the stored value itself (`InProcess.write`).
            self._keep_locally(stored, computed.value, ttl_seconds)
        return computed.value

    async def _lock(self, stored: str) -> str | bool:
        """The lock's token when taken; False when another instance holds it; True when no lock
        is needed (in process memory) or the storage failed (recompute without a lock: the
        database is the fallback anyway)."""
        try:
            return await self._storage.lock(stored)
        except BACKEND_ERRORS as error:
            self._failed("lock", error)
            return True

    async def _unlock(self, stored: str, token: str) -> None:
        try:
            await self._storage.unlock(stored, token)
        except BACKEND_ERRORS as error:
            self._failed("unlock", error)  # it expires after lock_seconds anyway

    async def _wait_unlocked(self, stored: str) -> None:
        try:
            await self._storage.wait_unlocked(stored)
        except BACKEND_ERRORS as error:
            self._failed("lock", error)

    def _hit(self) -> None:
        self.stats.hits += 1
        self._hits_counted.inc()

    def _waited(self) -> None:
        self.stats.waits += 1
        metrics.CACHE_WAITS.inc()

    def _failed(self, operation: str, error: BaseException) -> None:
        self.stats.errors += 1
        metrics.CACHE_ERRORS.labels(operation).inc()
        if self._available:
            self._available = False
            log.warning(
                "cache unavailable; reading from the database",
                operation=operation,
                error=f"{type(error).__name__}: {error}",
            )

    def _succeeded(self) -> None:
        if not self._available:
            self._available = True
            log.info("cache available again", errors=self.stats.errors)
