"""The cache: ready-to-send bytes by key, in Redis in production and in process memory otherwise.

Two storages, one set of rules. With `SKILLTREE_REDIS_URL` set, the values and the namespace
tokens live in Redis through the `cashews` library, shared by every instance. Without it (the
embedded default) they live in this process alone (`InProcess`): the values in a `LocalCopies`
(least recently used out first, bounded in entries and in bytes), the tokens beside them. This
module adds the rules skilltree relies on:

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
tokens it read and forgets a namespace's as the announcement arrives, so a local hit needs no
Redis round trip at all. Pub/sub is at-most-once, so the remembered tokens are trusted only while
the broadcaster says every message reaches this process (`connected`), only from its current
connection (`epoch`), and for at most `CacheSettings.token_trust_seconds`, after which one MGET
reads them again: a lost announcement leaves an entry stale for no longer than that. Without
listening (commands, tests of one cache) every read checks the tokens in Redis, as before.
Decision 0055.

In process memory. Without Redis the tokens are this process's own and no other process reads
or changes them: they are authoritative, so every read is built from them with no trust to
earn — no pub/sub, epochs or trust timeout — and `local_entry` (the fast path's lookup) answers
whenever the value is kept. `invalidate` drops the tokens synchronously (the next read makes new
ones, never one a namespace had before), before the writer's request answers, so the very next
read in this process sees the write; there is nothing to announce, as nothing outside this
process can hear it. What that leaves: a write made by another process (a command-line import)
reaches that process's own cache only, so the server serves the entry until its TTL; and so a
server without Redis runs one worker (`skilltree serve` refuses more). See docs/performance.md,
"Invalidation", and decision 0076.

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
import itertools
import math
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import cashews
from cachetools import LRUCache, TLRUCache
from cashews.exceptions import CacheError
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.broadcast import Broadcaster, ChannelListener, Delivery, RedisBroadcaster
from skilltree.platform.config import CacheSettings, RedisSettings
from skilltree.platform.db import after_commit
from skilltree.platform.observability import metrics
from skilltree.platform.observability.logging import get_logger
from skilltree.platform.replica import replica_staleness

log = get_logger("skilltree.cache")

# What a failing backend raises: cashews wraps connection errors, scripts raise redis' own.
BACKEND_ERRORS = (CacheError, RedisError, OSError, asyncio.TimeoutError)
# A namespace token outlives every entry that uses it; when it expires, a new one simply
# makes the (already expired) entries unreachable.
NAMESPACE_TTL_SECONDS = 30 * 24 * 3600
# How often a request waiting on another instance's recompute looks whether it finished.
LOCK_POLL_SECONDS = 0.02
STALE_NAMESPACES = "skilltree.stale_namespaces"
# How cashews stores a bytes value (its type's name, a colon, the bytes): the form a token takes
# when it is stored without cashews (`Cache._store_and_announce`), so that cashews reads it back.
# (Without the type a token of hex digits only would read back as an int.) tests/platform/
# test_cache.py checks that a token stored this way is read as the cache's own.
CASHEWS_BYTES = b"bytes:"
# The broadcast channel on which every invalidation is announced to every instance.
CHANNEL = "cache.namespaces"


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


@dataclass(eq=False)
class LocalCopy:
    """A value kept in this process, with what readers derived from it once (the parsed
    representation, its compressed variants): they live and die with the copy."""

    value: bytes
    ttl_seconds: int
    derived: dict[str, Any] = field(default_factory=dict)


class LocalCopies:
    """Values by versioned key in this process's memory: least recently used first out beyond
    `max_bytes` (and beyond `max_entries`, when given), and none kept longer than its TTL from
    when it was copied. (The TTL bounds how long an entry whose invalidation was lost to a Redis
    outage is served: with local copies, at most twice the TTL.)"""

    def __init__(
        self,
        max_bytes: int,
        timer: Callable[[], float] = time.monotonic,
        *,
        max_entries: int | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        # Each entry's expiry is set when it is stored, from its own TTL.
        self._entries: TLRUCache[str, LocalCopy] = TLRUCache(
            maxsize=max_bytes,
            ttu=lambda _key, entry, now: now + entry.ttl_seconds,
            timer=timer,
            getsizeof=lambda entry: len(entry.value),
        )

    def get(self, stored: str) -> bytes | None:
        entry = self._entries.get(stored)
        return entry.value if entry is not None else None

    def entry(self, stored: str) -> LocalCopy | None:
        return self._entries.get(stored)

    def put(self, stored: str, value: bytes, ttl_seconds: int) -> None:
        if len(value) > self._max_bytes:  # larger than the whole budget: not kept
            return
        kept = self._entries.get(stored)
        if kept is None or kept.value != value:
            self._entries[stored] = LocalCopy(value, ttl_seconds)
            if self._max_entries is not None:
                while len(self._entries) > self._max_entries:
                    self._entries.popitem()  # the least recently used


class InProcess:
    """The embedded default's storage (no Redis): values and namespace tokens in this process,
    which is the only one that reads or changes them, so its tokens are authoritative.

    A token is a number from a counter of this process: a namespace never gets one it had
    before, so an entry stored under an old token is never reached again. A namespace's token
    is dropped when it is invalidated (the next read makes a new one), or when more than
    `max_namespaces` are known (least recently used first): either way the entries computed
    under it become unreachable, which is always safe."""

    def __init__(self, values: LocalCopies, max_namespaces: int) -> None:
        self.values = values
        self._tokens: LRUCache[str, str] = LRUCache(maxsize=max_namespaces)
        self._counter = itertools.count(1)

    def versions(self, namespaces: tuple[str, ...], *, create: bool) -> str | None:
        """The namespaces' current tokens, joined as a key carries them; None when one has
        none and `create` is false (then no entry can be stored under it)."""
        tokens = self._tokens
        values = []
        for name in namespaces:
            token = tokens.get(name)
            if token is None:
                if not create:
                    return None
                token = tokens[name] = str(next(self._counter))
            values.append(token)
        return ".".join(values)

    def renew(self, namespaces: Iterable[str]) -> None:
        for name in namespaces:
            self._tokens.pop(name, None)


@dataclass(frozen=True, slots=True)
class _Token:
    """A namespace's token as read from Redis, with what trusting it later depends on."""

    value: bytes
    epoch: int  # the broadcaster's connection it was read under
    read_at: float


def stale_on_commit(session: AsyncSession, *namespaces: str) -> None:
    """Mark namespaces changed by this unit of work; they are invalidated once it commits."""
    session.info.setdefault(STALE_NAMESPACES, set()).update(namespaces)


class Cache:
    def __init__(
        self,
        backend: cashews.Cache | InProcess,
        *,
        prefix: str,
        lock_seconds: float,
        enabled: bool = True,
        local: LocalCopies | None = None,
        publisher: Broadcaster | None = None,
        owns_publisher: bool = False,
        tokens_through_publisher: bool = False,
        token_trust_seconds: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        # Redis through cashews, or this process alone (whose values are its local copies).
        self._backend = backend
        self._local = backend.values if isinstance(backend, InProcess) else local
        # Where invalidations are announced (None: one process, nothing to tell).
        self._publisher = publisher
        self._owns_publisher = owns_publisher
        # The publisher's Redis is the cache's: a new token and its announcement go together
        # (`invalidate`).
        self._tokens_through: RedisBroadcaster | None = (
            publisher
            if tokens_through_publisher and isinstance(publisher, RedisBroadcaster)
            else None
        )
        self._token_trust_seconds = token_trust_seconds
        self._timer = timer
        # Namespace tokens read from Redis, trusted while announcements reach this process.
        self._tokens: dict[str, _Token] = {}
        self._generation = 0
        self._listened: Broadcaster | None = None
        self._listener: ChannelListener | None = None
        self.heard = 0  # invalidations announced by any instance and received here
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
        backend = cashews.Cache(name="skilltree")
        # Values are bytes this cache wrote: never unpickle them. cashews also calls repr() on
        # every value it reads, to catch broken pickles; there are none without pickling, and
        # repr of a 160 kB tree costs about half a millisecond, in memory as from Redis.
        only_bytes: dict[str, Any] = {"pickle_type": "null", "check_repr": False}
        if redis.url is None:
            # The values are the local copies, kept once; no lock, publisher or listener: no
            # other process shares this cache.
            values = LocalCopies(cache.local_max_bytes, max_entries=cache.memory_max_entries)
            return cls(
                InProcess(values, max_namespaces=cache.memory_max_entries),
                prefix=f"{redis.key_prefix}cache:",
                lock_seconds=cache.lock_seconds,
                enabled=cache.enabled,
            )
        backend.setup(
            redis.url,
            # Raise on failure (instead of cashews' own logging) so it is counted here.
            suppress=False,
            **only_bytes,
            socket_timeout=redis.timeout_seconds,
            socket_connect_timeout=redis.timeout_seconds,
            wait_for_connection_timeout=redis.timeout_seconds,
            max_connections=64,
            client_name="skilltree-cache",
        )
        local = LocalCopies(cache.local_max_bytes) if cache.local_max_bytes else None
        publisher, owned = broadcaster, False
        if publisher is None:
            # Publishing only (it never subscribes): every process that invalidates announces.
            publisher = RedisBroadcaster(
                redis.url, f"{redis.key_prefix}rt:", timeout_seconds=redis.timeout_seconds
            )
            owned = True
        # A publisher on the cache's own Redis stores the tokens too (the app's, and one of
        # the cache's own): the same commands in one round trip instead of two.
        tokens_through_publisher = (
            isinstance(publisher, RedisBroadcaster) and publisher.url == redis.url
        )
        return cls(
            backend,
            prefix=f"{redis.key_prefix}cache:",
            lock_seconds=cache.lock_seconds,
            enabled=cache.enabled,
            local=local,
            publisher=publisher,
            owns_publisher=owned,
            tokens_through_publisher=tokens_through_publisher,
            token_trust_seconds=cache.token_trust_seconds,
        )

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
        stored = self._trusted_stored_key(key)
        if stored is None:
            return None
        copy = self._local.entry(stored)
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
        backend = self._backend
        if isinstance(backend, InProcess):
            backend.renew(names)  # at once: the next read in this process sees the write
            return
        tokens = {self._namespace_key(name): _new_token() for name in names}
        if self._tokens_through is not None:
            await self._store_and_announce(self._tokens_through, names, tokens)
            return
        try:
            await backend.set_many(tokens, expire=NAMESPACE_TTL_SECONDS)
        except BACKEND_ERRORS as error:
            # Entries of these namespaces live on until their TTL: the reason TTLs stay bounded.
            self._failed("invalidate", error)
            self._forget(names)
            return
        # After the new tokens are stored: a reader that reads the tokens again gets them.
        self._forget(names)
        if self._publisher is not None:
            try:
                await self._publisher.publish(CHANNEL, {"namespaces": names}, keep=False)
            except (RedisError, OSError) as error:
                # Listeners trust what they remember for token_trust_seconds at most.
                log.warning("cache invalidation not announced", error=repr(error))

    async def _store_and_announce(
        self, publisher: RedisBroadcaster, names: list[str], tokens: dict[str, bytes]
    ) -> None:
        """`invalidate` in one round trip: the new tokens stored, then announced, by one
        script on the publisher's connection to the same Redis. This skips cashews around
        `set_many` (a MULTI/EXEC pipeline and its middleware chain) and a second round trip
        for the announcement: a fifth of the progress write's CPU went to the two."""
        try:
            await publisher.set_then_announce(
                {key: CASHEWS_BYTES + token for key, token in tokens.items()},
                NAMESPACE_TTL_SECONDS,
                CHANNEL,
                {"namespaces": names},
            )
        except BACKEND_ERRORS as error:
            # Stored or not, the tokens are read again; unannounced, listeners trust what they
            # remember for token_trust_seconds at most.
            self._failed("invalidate", error)
        self._forget(names)

    async def listen(self, broadcaster: Broadcaster) -> None:
        """Hear every instance's invalidations, so local hits need no Redis round trip."""
        if (
            self._listener is None
            and not isinstance(self._backend, InProcess)  # nothing to hear: see the docstring
            and self._local is not None
            and self._token_trust_seconds > 0
        ):
            self._listened = broadcaster
            # Whenever announcements may have been missed (overflow, a reconnection, a message
            # it could not read), every remembered token is forgotten.
            self._listener = ChannelListener(
                broadcaster, CHANNEL, on_message=self._heard, on_gap=self._forget_all
            )
            self._listener.start()

    def listening(self) -> bool:
        """Whether announcements reach this process now (and remembered tokens are trusted)."""
        return self._listener is not None and self._listener.listening

    def _heard(self, delivery: Delivery) -> None:
        names = delivery.message.get("namespaces", [])
        if not isinstance(names, list):
            raise ValueError(f"an invalidation names no namespaces: {delivery.message!r}")
        self.heard += 1
        self._forget([name for name in names if isinstance(name, str)])

    def _trusting(self) -> bool:
        broadcaster = self._listened
        return self.listening() and broadcaster is not None and broadcaster.connected

    def _trusted_stored_key(self, key: Key) -> str | None:
        """The versioned key from remembered tokens alone, when every one of them is trusted
        (in process memory: from the process's own tokens, when each namespace has one)."""
        if isinstance(self._backend, InProcess):
            versions = self._backend.versions(key.namespaces, create=False)
            return None if versions is None else f"{self._prefix}{key.name}@{versions}"
        if not self._trusting() or self._listened is None:
            return None
        epoch, now = self._listened.epoch, self._timer()
        values = []
        for name in key.namespaces:
            token = self._tokens.get(name)
            if token is None or token.epoch != epoch:
                return None
            if now - token.read_at > self._token_trust_seconds:
                return None
            values.append(token.value)
        return f"{self._prefix}{key.name}@{b'.'.join(values).decode()}"

    def _remember(self, namespaces: tuple[str, ...], tokens: list[bytes], generation: int) -> None:
        # Tokens read before an invalidation was heard may be the old ones: not remembered.
        if generation != self._generation or not self._trusting() or self._listened is None:
            return
        epoch, now = self._listened.epoch, self._timer()
        for name, value in zip(namespaces, tokens, strict=True):
            self._tokens[name] = _Token(value, epoch, now)

    def _forget(self, namespaces: Iterable[str]) -> None:
        self._generation += 1
        for name in namespaces:
            self._tokens.pop(name, None)

    def _forget_all(self) -> None:
        self._generation += 1
        self._tokens.clear()

    def bind(self, session: AsyncSession) -> None:
        """Invalidate what this unit of work marks stale (`stale_on_commit`) once it commits."""

        async def invalidate_marked() -> None:
            # Most units of work mark nothing: then there is nothing to await.
            marked = session.info.pop(STALE_NAMESPACES, None)
            if marked:
                await self.invalidate(marked)

        after_commit(session, invalidate_marked)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._owns_publisher and self._publisher is not None:
            await self._publisher.close()
        if isinstance(self._backend, InProcess):
            return
        # cashews 7.6 closes its Redis client with redis-py's deprecated close(): same effect.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await self._backend.close()

    async def _stored_key(self, key: Key) -> str | None:
        """The key with each namespace's current token; None when the cache cannot be read."""
        backend = self._backend
        if isinstance(backend, InProcess):
            return f"{self._prefix}{key.name}@{backend.versions(key.namespaces, create=True)}"
        trusted = self._trusted_stored_key(key)
        if trusted is not None:
            return trusted
        generation = self._generation
        names = [self._namespace_key(name) for name in key.namespaces]
        try:
            tokens = list(await backend.get_many(*names))
            missing = [name for name, token in zip(names, tokens, strict=True) if token is None]
            if missing:
                # Set-if-absent, then re-read: concurrent first readers agree on one token.
                for name in missing:
                    await backend.set(name, _new_token(), NAMESPACE_TTL_SECONDS, exist=False)
                tokens = list(await backend.get_many(*names))
        except BACKEND_ERRORS as error:
            self._failed("read", error)
            return None
        present = [token for token in tokens if isinstance(token, bytes)]
        if len(present) != len(tokens):
            return None  # evicted between the two reads: no version to trust
        self._succeeded()
        self._remember(key.namespaces, present, generation)
        versions = b".".join(present).decode()
        return f"{self._prefix}{key.name}@{versions}"

    async def _get(self, stored: str, ttl_seconds: int) -> bytes | None:
        if self._local is not None and (copy := self._local.get(stored)) is not None:
            self.stats.local_hits += 1
            return copy
        backend = self._backend
        if isinstance(backend, InProcess):
            return None  # the local copies are the whole cache
        try:
            value = await backend.get(stored)
        except BACKEND_ERRORS as error:
            self._failed("read", error)
            return None
        if not isinstance(value, bytes):
            return None
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
        backend = self._backend
        if not computed.shareable:
            return computed.value
        if isinstance(backend, InProcess):
            backend.values.put(stored, computed.value, ttl_seconds)
            return computed.value
        try:
            await backend.set(stored, computed.value, expire=ttl_seconds)
        except BACKEND_ERRORS as error:
            self._failed("write", error)
        else:
            self._keep_locally(stored, computed.value, ttl_seconds)
        return computed.value

    async def _lock(self, stored: str) -> str | bool:
        """The lock's token when taken; False when another holds it; True when no lock is
        needed (in process memory: the requests that could race wait on `_recomputing`) or the
        backend failed (recompute without a lock: the database is the fallback anyway)."""
        backend = self._backend
        if isinstance(backend, InProcess):
            return True
        token = secrets.token_hex(8)
        try:
            taken = await backend.set_lock(self._lock_key(stored), token, self._lock_seconds)
        except BACKEND_ERRORS as error:
            self._failed("lock", error)
            return True
        return token if taken else False

    async def _unlock(self, stored: str, token: str) -> None:
        if isinstance(self._backend, InProcess):  # never locked (`_lock`)
            return
        try:
            await self._backend.unlock(self._lock_key(stored), token)
        except BACKEND_ERRORS as error:
            self._failed("unlock", error)  # it expires after lock_seconds anyway

    async def _wait_unlocked(self, stored: str) -> None:
        if isinstance(self._backend, InProcess):  # never locked (`_lock`)
            return
        try:
            await self._backend.is_locked(
                self._lock_key(stored), wait=self._lock_seconds, step=LOCK_POLL_SECONDS
            )
        except BACKEND_ERRORS as error:
            self._failed("lock", error)

    def _namespace_key(self, namespace: str) -> str:
        return f"{self._prefix}ns:{namespace}"

    def _lock_key(self, stored: str) -> str:
        return f"{self._prefix}lock:{stored.removeprefix(self._prefix)}"

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


def _new_token() -> bytes:
    return secrets.token_hex(6).encode()
