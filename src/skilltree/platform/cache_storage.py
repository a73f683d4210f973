"""Where the cache keeps its values and namespace tokens: Redis, or this process alone.

`Cache` (platform/cache.py) holds the rules both share: the versioned keys, stampede protection,
the local copies it keeps of what it reads and writes, its stats and how a failure is counted.
A `Storage` holds what differs, side by side below:

- values: `InRedis` (`SKILLTREE_REDIS_URL` set) keeps them in Redis, through cashews, and copies
  in `local`; `InProcess` (the embedded default) only in `local`: the copies are the cache.
- namespace tokens: in Redis, shared by every instance; in process, a counter's numbers.
- tokens trusted without a round trip: with Redis, those remembered while every instance's
  announcements reach this process (`RememberedTokens`); in process, all: no one else has any.
- invalidation: new tokens stored in Redis, then announced; in process, the tokens dropped.
- a recompute's lock: a short Redis lock across instances; in process none, as the requests
  that could race are this process's and wait on the cache's own events.

A storage's async methods raise `BACKEND_ERRORS` when Redis fails; the cache counts the failure
and reads the database instead. `InProcess` never raises them.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import cashews
from cachetools import LRUCache, TLRUCache
from cashews.exceptions import CacheError
from redis.exceptions import RedisError

from skilltree.platform.broadcast import Broadcaster, ChannelListener, Delivery, RedisBroadcaster
from skilltree.platform.config import CacheSettings, RedisSettings
from skilltree.platform.observability.logging import get_logger

log = get_logger("skilltree.cache")

# What a failing backend raises: cashews wraps connection errors, scripts raise redis' own.
BACKEND_ERRORS = (CacheError, RedisError, OSError, asyncio.TimeoutError)
# A namespace token outlives every entry that uses it; when it expires, a new one simply
# makes the (already expired) entries unreachable.
NAMESPACE_TTL_SECONDS = 30 * 24 * 3600
# How often a request waiting on another instance's recompute looks whether it finished.
LOCK_POLL_SECONDS = 0.02
# How cashews stores a bytes value (its type's name, a colon, the bytes): the form a token takes
# when it is stored without cashews (`InRedis._store_and_announce`), so that cashews reads it
# back. (Without the type a token of hex digits only would read back as an int.) tests/platform/
# test_cache.py checks that a token stored this way is read as the cache's own.
CASHEWS_BYTES = b"bytes:"
# The broadcast channel on which every invalidation is announced to every instance.
CHANNEL = "cache.namespaces"


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


class Storage(Protocol):
    """What the cache's two storages do differently. A namespace's token is part of every key
    computed from it; `versions` are the tokens of a key's namespaces, joined as the key
    carries them."""

    # The values this process keeps, by versioned key: copies of what the storage holds, or
    # the storage's values themselves (None: none kept).
    local: LocalCopies | None

    def trusted_versions(self, namespaces: tuple[str, ...]) -> str | None:
        """The current versions when known without a round trip; else None."""
        ...

    async def versions(self, namespaces: tuple[str, ...]) -> str | None:
        """The current versions, each namespace given a token if it has none; None when a
        token vanished while being read (then there is no version to trust)."""
        ...

    async def renew(self, namespaces: list[str]) -> None:
        """New tokens for these namespaces: their entries are unreachable from now on."""
        ...

    async def read(self, stored: str) -> bytes | None:
        """The value under a versioned key, from beyond this process's local copies."""
        ...

    async def write(self, stored: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value beyond this process's local copies."""
        ...

    async def lock(self, stored: str) -> str | bool:
        """Before recomputing: the lock's token when taken; False when another instance holds
        it; True when no lock is needed."""
        ...

    async def unlock(self, stored: str, token: str) -> None: ...

    async def wait_unlocked(self, stored: str) -> None:
        """Until another instance's recompute of `stored` ends, or `lock_seconds` pass."""
        ...

    async def listen(self, broadcaster: Broadcaster) -> None:
        """Hear the invalidations of every instance, where there are others to hear."""
        ...

    def listening(self) -> bool:
        """Whether announced invalidations reach this process now."""
        ...

    def heard(self) -> int:
        """How many announced invalidations reached this process."""
        ...

    async def close(self) -> None: ...


class InProcess:
    """The embedded default's storage (no Redis): values and namespace tokens in this process,
    which is the only one that reads or changes them, so its tokens are authoritative and every
    key built from them is trusted (decision 0076).

    The values are `local`, kept once: there is nothing beyond them to read or write. A token
    is a number from a counter of this process: a namespace never gets one it had before, so an
    entry stored under an old token is never reached again. A namespace's token is dropped when
    it is invalidated (the next read makes a new one), or when more than `max_namespaces` are
    known (least recently used first): either way the entries computed under it become
    unreachable, which is always safe."""

    def __init__(self, values: LocalCopies, max_namespaces: int) -> None:
        self.local: LocalCopies | None = values
        self._tokens: LRUCache[str, str] = LRUCache(maxsize=max_namespaces)
        self._counter = itertools.count(1)

    @classmethod
    def from_settings(cls, cache: CacheSettings) -> InProcess:
        values = LocalCopies(cache.local_max_bytes, max_entries=cache.memory_max_entries)
        return cls(values, max_namespaces=cache.memory_max_entries)

    def trusted_versions(self, namespaces: tuple[str, ...]) -> str | None:
        # None when a namespace has no token yet: then no entry can be stored under it.
        tokens = self._tokens
        values = []
        for name in namespaces:
            token = tokens.get(name)
            if token is None:
                return None
            values.append(token)
        return ".".join(values)

    async def versions(self, namespaces: tuple[str, ...]) -> str | None:
        tokens = self._tokens
        values = []
        for name in namespaces:
            token = tokens.get(name)
            if token is None:
                token = tokens[name] = str(next(self._counter))
            values.append(token)
        return ".".join(values)

    async def renew(self, namespaces: list[str]) -> None:
        # Dropped at once, without awaiting anything: the next read in this process sees the
        # write. Nothing is announced: nothing outside this process could hear it.
        for name in namespaces:
            self._tokens.pop(name, None)

    async def read(self, stored: str) -> bytes | None:
        return None  # every value is in `local`, where the cache has looked already

    async def write(self, stored: str, value: bytes, ttl_seconds: int) -> None:
        return None  # the cache keeps the value in `local`, which is all this storage has

    async def lock(self, stored: str) -> str | bool:
        return True  # the requests that could race are this process's: they wait on its events

    async def unlock(self, stored: str, token: str) -> None:
        return None  # never locked

    async def wait_unlocked(self, stored: str) -> None:
        return None  # never locked

    async def listen(self, broadcaster: Broadcaster) -> None:
        return None  # no other process changes these tokens: nothing to hear

    def listening(self) -> bool:
        return False

    def heard(self) -> int:
        return 0

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Token:
    """A namespace's token as read from Redis, with what trusting it later depends on."""

    value: bytes
    epoch: int  # the broadcaster's connection it was read under
    read_at: float


class RememberedTokens:
    """Namespace tokens read from Redis, trusted without asking Redis again while every
    invalidation's announcement reaches this process (decision 0055).

    Pub/sub is at-most-once, so a token is trusted only while the broadcaster says every message
    reaches this process (`connected`), only from its current connection (`epoch`), and for at
    most `trust_seconds`: a lost announcement leaves an entry stale for no longer than that."""

    def __init__(self, trust_seconds: float, timer: Callable[[], float] = time.monotonic) -> None:
        self._trust_seconds = trust_seconds
        self._timer = timer
        self._tokens: dict[str, _Token] = {}
        # Counts the forgettings: tokens read before one may be the old ones (`remember`).
        self.generation = 0
        self._listened: Broadcaster | None = None
        self._listener: ChannelListener | None = None
        self.heard = 0  # invalidations announced by any instance and received here

    async def listen(self, broadcaster: Broadcaster) -> None:
        if self._listener is None and self._trust_seconds > 0:
            self._listened = broadcaster
            # Whenever announcements may have been missed (overflow, a reconnection, a message
            # it could not read), every remembered token is forgotten.
            self._listener = ChannelListener(
                broadcaster, CHANNEL, on_message=self._heard, on_gap=self.forget_all
            )
            self._listener.start()

    def listening(self) -> bool:
        return self._listener is not None and self._listener.listening

    def versions(self, namespaces: tuple[str, ...]) -> str | None:
        """The remembered tokens of these namespaces, joined, when every one is trusted."""
        if not self._trusting() or self._listened is None:
            return None
        epoch, now = self._listened.epoch, self._timer()
        values = []
        for name in namespaces:
            token = self._tokens.get(name)
            if token is None or token.epoch != epoch:
                return None
            if now - token.read_at > self._trust_seconds:
                return None
            values.append(token.value)
        return b".".join(values).decode()

    def remember(self, namespaces: tuple[str, ...], tokens: list[bytes], generation: int) -> None:
        """Keep tokens read from Redis while `generation` was current."""
        # Tokens read before an invalidation was heard may be the old ones: not remembered.
        if generation != self.generation or not self._trusting() or self._listened is None:
            return
        epoch, now = self._listened.epoch, self._timer()
        for name, value in zip(namespaces, tokens, strict=True):
            self._tokens[name] = _Token(value, epoch, now)

    def forget(self, namespaces: Iterable[str]) -> None:
        self.generation += 1
        for name in namespaces:
            self._tokens.pop(name, None)

    def forget_all(self) -> None:
        self.generation += 1
        self._tokens.clear()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    def _heard(self, delivery: Delivery) -> None:
        names = delivery.message.get("namespaces", [])
        if not isinstance(names, list):
            raise ValueError(f"an invalidation names no namespaces: {delivery.message!r}")
        self.heard += 1
        self.forget([name for name in names if isinstance(name, str)])

    def _trusting(self) -> bool:
        broadcaster = self._listened
        return self.listening() and broadcaster is not None and broadcaster.connected


class InRedis:
    """Values and namespace tokens in Redis (through cashews), shared by every instance; the
    process keeps `local` copies, trusted while the tokens they were stored under are
    remembered (`RememberedTokens`). Every invalidation is announced on `CHANNEL` after its new
    tokens are stored, through `publisher` (None: nothing to tell)."""

    def __init__(
        self,
        backend: cashews.Cache,
        *,
        prefix: str,
        lock_seconds: float,
        local: LocalCopies | None = None,
        publisher: Broadcaster | None = None,
        owns_publisher: bool = False,
        tokens_through_publisher: bool = False,
        token_trust_seconds: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._prefix = prefix
        self._lock_seconds = lock_seconds
        self.local = local
        self._publisher = publisher
        self._owns_publisher = owns_publisher
        # The publisher's Redis is the cache's: a new token and its announcement go together
        # (`renew`).
        self._tokens_through: RedisBroadcaster | None = (
            publisher
            if tokens_through_publisher and isinstance(publisher, RedisBroadcaster)
            else None
        )
        self._remembered = RememberedTokens(token_trust_seconds, timer)

    @classmethod
    def from_settings(
        cls,
        cache: CacheSettings,
        redis: RedisSettings,
        prefix: str,
        broadcaster: Broadcaster | None,
    ) -> InRedis:
        """Nothing connects until first use. Invalidations are announced through `broadcaster`,
        or with none given, through a publisher of the storage's own (commands, workers)."""
        if redis.url is None:
            raise ValueError("InRedis needs SKILLTREE_REDIS_URL")
        backend = cashews.Cache(name="skilltree")
        backend.setup(
            redis.url,
            # Raise on failure (instead of cashews' own logging) so the cache counts it.
            suppress=False,
            # Values are bytes this cache wrote: never unpickle them. cashews also calls repr()
            # on every value it reads, to catch broken pickles; there are none without
            # pickling, and repr of a 160 kB tree costs about half a millisecond.
            pickle_type="null",
            check_repr=False,
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
        return cls(
            backend,
            prefix=prefix,
            lock_seconds=cache.lock_seconds,
            local=local,
            publisher=publisher,
            owns_publisher=owned,
            # A publisher on the cache's own Redis stores the tokens too (the app's, and one of
            # the storage's own): the same commands in one round trip instead of two.
            tokens_through_publisher=(
                isinstance(publisher, RedisBroadcaster) and publisher.url == redis.url
            ),
            token_trust_seconds=cache.token_trust_seconds,
        )

    def trusted_versions(self, namespaces: tuple[str, ...]) -> str | None:
        return self._remembered.versions(namespaces)

    async def versions(self, namespaces: tuple[str, ...]) -> str | None:
        generation = self._remembered.generation
        backend = self._backend
        names = [self._namespace_key(name) for name in namespaces]
        tokens = list(await backend.get_many(*names))
        missing = [name for name, token in zip(names, tokens, strict=True) if token is None]
        if missing:
            # Set-if-absent, then re-read: concurrent first readers agree on one token.
            for name in missing:
                await backend.set(name, _new_token(), NAMESPACE_TTL_SECONDS, exist=False)
            tokens = list(await backend.get_many(*names))
        present = [token for token in tokens if isinstance(token, bytes)]
        if len(present) != len(tokens):
            return None  # evicted between the two reads: no version to trust
        self._remembered.remember(namespaces, present, generation)
        return b".".join(present).decode()

    async def renew(self, namespaces: list[str]) -> None:
        tokens = {self._namespace_key(name): _new_token() for name in namespaces}
        try:
            if self._tokens_through is not None:
                await self._store_and_announce(self._tokens_through, namespaces, tokens)
                return
            # When this fails, the entries of these namespaces live on until their TTL: the
            # reason TTLs stay bounded.
            await self._backend.set_many(tokens, expire=NAMESPACE_TTL_SECONDS)
        finally:
            # After the new tokens are stored (or failed to be): the next read asks Redis.
            self._remembered.forget(namespaces)
        await self._announce(namespaces)

    async def _store_and_announce(
        self, publisher: RedisBroadcaster, namespaces: list[str], tokens: dict[str, bytes]
    ) -> None:
        """`renew` in one round trip: the new tokens stored, then announced, by one script on
        the publisher's connection to the same Redis. This skips cashews around `set_many` (a
        MULTI/EXEC pipeline and its middleware chain) and a second round trip for the
        announcement: a fifth of the progress write's CPU went to the two. Unannounced after
        a failure, listeners trust what they remember for token_trust_seconds at most."""
        await publisher.set_then_announce(
            {key: CASHEWS_BYTES + token for key, token in tokens.items()},
            NAMESPACE_TTL_SECONDS,
            CHANNEL,
            {"namespaces": namespaces},
        )

    async def _announce(self, namespaces: list[str]) -> None:
        if self._publisher is None:
            return
        try:
            await self._publisher.publish(CHANNEL, {"namespaces": namespaces}, keep=False)
        except (RedisError, OSError) as error:
            # Not counted as the cache failing: the tokens are stored. Listeners trust what
            # they remember for token_trust_seconds at most.
            log.warning("cache invalidation not announced", error=repr(error))

    async def read(self, stored: str) -> bytes | None:
        value = await self._backend.get(stored)
        return value if isinstance(value, bytes) else None

    async def write(self, stored: str, value: bytes, ttl_seconds: int) -> None:
        await self._backend.set(stored, value, expire=ttl_seconds)

    async def lock(self, stored: str) -> str | bool:
        token = secrets.token_hex(8)
        taken = await self._backend.set_lock(self._lock_key(stored), token, self._lock_seconds)
        return token if taken else False

    async def unlock(self, stored: str, token: str) -> None:
        await self._backend.unlock(self._lock_key(stored), token)

    async def wait_unlocked(self, stored: str) -> None:
        await self._backend.is_locked(
            self._lock_key(stored), wait=self._lock_seconds, step=LOCK_POLL_SECONDS
        )

    async def listen(self, broadcaster: Broadcaster) -> None:
        # Without local copies, remembered tokens would save no round trip: every value is
        # read from Redis anyway.
        if self.local is not None:
            await self._remembered.listen(broadcaster)

    def listening(self) -> bool:
        return self._remembered.listening()

    def heard(self) -> int:
        return self._remembered.heard

    async def close(self) -> None:
        await self._remembered.close()
        if self._owns_publisher and self._publisher is not None:
            await self._publisher.close()
        # cashews 7.6 closes its Redis client with redis-py's deprecated close(): same effect.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await self._backend.close()

    def _namespace_key(self, namespace: str) -> str:
        return f"{self._prefix}ns:{namespace}"

    def _lock_key(self, stored: str) -> str:
        return f"{self._prefix}lock:{stored.removeprefix(self._prefix)}"


def _new_token() -> bytes:
    return secrets.token_hex(6).encode()
