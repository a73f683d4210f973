"""Who is in a room now: entries that expire unless their connection keeps sending heartbeats.

An entry is (user, connection) with an expiry; a user is present while any of their entries
lives. A client that crashes, or an instance that dies with its connections, stops renewing
them, and the next sweep by any connection of the room removes them and announces the leave.
Removal is atomic (a ZREM or a dict pop), so of several sweepers exactly one announces it.
Announcements are batched per room and interval (`PresenceAnnouncer`, decision 0050).

In-process for the embedded default; a sorted set per room (score = expiry) in Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from skilltree.platform.broadcast import Broadcaster

log = structlog.get_logger(__name__)

ONLINE = "online"
OFFLINE = "offline"


class Presence:
    # Rooms whose last sweep time is remembered; beyond this the memory starts over.
    SWEPT_ROOMS = 10_000

    def __init__(self) -> None:
        self._swept: dict[int, float] = {}

    def sweep_due(self, room_id: int, every: float) -> bool:
        """Whether this process should sweep the room now (not swept in the last `every`
        seconds); True claims the sweep, so of a room's connections one sweeps."""
        now = time.monotonic()
        if now - self._swept.get(room_id, -every) < every:
            return False
        if len(self._swept) >= self.SWEPT_ROOMS:
            self._swept.clear()
        self._swept[room_id] = now
        return True

    async def enter(self, room_id: int, user_id: int, connection: str, ttl: float) -> bool:
        """Add or renew the entry; True when the user was not present before."""
        raise NotImplementedError

    async def leave(self, room_id: int, user_id: int, connection: str) -> bool:
        """Remove the entry; True when that was the user's last one."""
        raise NotImplementedError

    async def sweep(self, room_id: int) -> list[int]:
        """Remove expired entries; the users this call found gone (announce their leave)."""
        raise NotImplementedError

    async def present(self, room_id: int) -> list[int]:
        raise NotImplementedError


def _member(user_id: int, connection: str) -> str:
    return f"{user_id}:{connection}"


def _user_of(member: str) -> int:
    return int(member.partition(":")[0])


class LocalPresence(Presence):
    def __init__(self) -> None:
        super().__init__()
        self._rooms: dict[int, dict[str, float]] = {}

    async def enter(self, room_id: int, user_id: int, connection: str, ttl: float) -> bool:
        entries = self._rooms.setdefault(room_id, {})
        member, now = _member(user_id, connection), time.monotonic()
        # A heartbeat renews a live entry: the user is present, no need to look at the others.
        was_present = entries.get(member, 0.0) > now or any(
            _user_of(m) == user_id and until > now for m, until in entries.items()
        )
        entries[member] = now + ttl
        return not was_present

    async def leave(self, room_id: int, user_id: int, connection: str) -> bool:
        entries = self._rooms.get(room_id, {})
        if entries.pop(_member(user_id, connection), None) is None:
            return False
        if not entries:
            self._rooms.pop(room_id, None)
        return not any(_user_of(m) == user_id for m in entries)

    async def sweep(self, room_id: int) -> list[int]:
        entries = self._rooms.get(room_id, {})
        now = time.monotonic()
        expired = [m for m, until in entries.items() if until <= now]
        gone = set()
        for member in expired:
            if entries.pop(member, None) is not None:
                gone.add(_user_of(member))
        remaining = {_user_of(m) for m in entries}
        return sorted(gone - remaining)

    async def present(self, room_id: int) -> list[int]:
        now = time.monotonic()
        return sorted(
            {_user_of(m) for m, until in self._rooms.get(room_id, {}).items() if until > now}
        )


# Redis round trips for presence that one process makes at once. Every member's client beats
# every ten seconds, and a room that filled up together beats together: unbounded, a few
# hundred heartbeats would take every connection of the shared pool, and sign-ins, sessions
# and rate limits would wait behind them. Bounded, heartbeats queue here for a few
# milliseconds each and leave the rest of the pool to the rest of the app.
REDIS_CONCURRENCY = 16
# What a presence call may wait for its turn and its answer before it is given up.
REDIS_PATIENCE_SECONDS = 5.0
# Redis unreachable, refusing, timing out or out of connections.
REDIS_FAILURES = (RedisError, OSError, TimeoutError)

T = TypeVar("T")


class RedisPresence(Presence):
    """Presence in Redis, which never fails a socket: presence is a courtesy, chat is not.

    While Redis is unreachable every call answers as if nothing changed (no one arrives or
    leaves, nobody is listed present) and the room goes on without presence; the outage is
    logged once, and its end once, and the next heartbeat of each member puts them back.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = prefix
        self._turns = asyncio.Semaphore(REDIS_CONCURRENCY)
        self._down = False

    def _key(self, room_id: int) -> str:
        return f"{self._prefix}presence:{room_id}"

    async def _users(self, key: str, now_ms: int) -> set[int]:
        members = await self._redis.zrangebyscore(key, f"({now_ms}", "+inf")
        return {_user_of(str(m)) for m in members}

    def _failed(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("rooms.presence_unavailable", error=repr(error))

    def _succeeded(self) -> None:
        if self._down:
            self._down = False
            log.info("rooms.presence_recovered")

    async def _guarded(self, call: Callable[[], Awaitable[T]], if_down: T) -> T:
        """`call` in its turn and within its patience; while Redis fails, `if_down` (the
        outage logged once)."""
        try:
            async with asyncio.timeout(REDIS_PATIENCE_SECONDS), self._turns:
                result = await call()
        except REDIS_FAILURES as error:
            self._failed(error)
            return if_down
        self._succeeded()
        return result

    async def enter(self, room_id: int, user_id: int, connection: str, ttl: float) -> bool:
        return await self._guarded(lambda: self._enter(room_id, user_id, connection, ttl), False)

    async def _enter(self, room_id: int, user_id: int, connection: str, ttl: float) -> bool:
        key = self._key(room_id)
        member, now_ms = _member(user_id, connection), int(time.time() * 1000)
        # A heartbeat renews a live entry: one ZSCORE, not a read of everyone in the room
        # (a thousand members send a hundred heartbeats a second).
        own = await self._redis.zscore(key, member)
        was_present = (own is not None and own > now_ms) or user_id in await self._users(
            key, now_ms
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {member: now_ms + int(ttl * 1000)})
            pipe.pexpire(key, int(ttl * 1000) * 10)
            await pipe.execute()
        return not was_present

    async def leave(self, room_id: int, user_id: int, connection: str) -> bool:
        # While Redis is down the entry expires by itself, and a sweep announces the leave.
        return await self._guarded(lambda: self._leave(room_id, user_id, connection), False)

    async def _leave(self, room_id: int, user_id: int, connection: str) -> bool:
        key = self._key(room_id)
        removed = await self._redis.zrem(key, _member(user_id, connection))
        return bool(removed) and user_id not in await self._users(key, int(time.time() * 1000))

    async def sweep(self, room_id: int) -> list[int]:
        return await self._guarded(lambda: self._sweep(room_id), [])

    async def _sweep(self, room_id: int) -> list[int]:
        key = self._key(room_id)
        now_ms = int(time.time() * 1000)
        expired = await self._redis.zrangebyscore(key, "-inf", now_ms)
        gone = set()
        for member in expired:
            if await self._redis.zrem(key, str(member)):
                gone.add(_user_of(str(member)))
        return sorted(gone - await self._users(key, now_ms))

    async def present(self, room_id: int) -> list[int]:
        return await self._guarded(lambda: self._present(room_id), [])

    async def _present(self, room_id: int) -> list[int]:
        return sorted(await self._users(self._key(room_id), int(time.time() * 1000)))


class PresenceAnnouncer:
    """Joins and leaves, told to a room once per `interval` in one `presence` frame.

    A frame per change would cost a room of n members n²/2 frames while they arrive (each
    join is sent to everyone already there): a thousand members joining is half a million
    frames, and chat waits behind them. Batched, each instance sends a room at most one frame
    per interval, listing who came and who went since the last one, so the cost per client is
    O(changes) spread over time. A user who comes and goes within one interval is listed by
    their latest state only. One announcer per process, shared by every connection in it.
    """

    def __init__(self, broadcaster: Broadcaster, interval: float) -> None:
        self._broadcaster = broadcaster
        self._interval = interval
        # channel -> {user id: latest state}; a channel with changes has one flush waiting.
        self._pending: dict[str, dict[int, str]] = {}
        self._flushes: dict[str, asyncio.Task[None]] = {}

    def note(self, channel: str, user_id: int, state: str) -> None:
        changes = self._pending.setdefault(channel, {})
        changes[user_id] = state
        if channel not in self._flushes:
            self._flushes[channel] = asyncio.get_running_loop().create_task(
                self._flush_after_interval(channel), name="presence-flush"
            )

    async def _flush_after_interval(self, channel: str) -> None:
        await asyncio.sleep(self._interval)
        # Taken before publishing: a change noted while this frame is on its way starts the
        # next interval instead of being lost.
        del self._flushes[channel]
        changes = self._pending.pop(channel, {})
        try:
            await self._broadcaster.publish(channel, presence_frame(changes), keep=False)
        except (RedisError, OSError) as error:
            # Presence is ephemeral: the next welcome (a snapshot) puts any client right.
            log.warning("rooms.presence_unannounced", channel=channel, error=repr(error))

    async def close(self) -> None:
        flushes = list(self._flushes.values())
        for flush in flushes:
            flush.cancel()
        await asyncio.gather(*flushes, return_exceptions=True)


def presence_frame(changes: dict[int, str]) -> dict[str, Any]:
    return {
        "type": "presence",
        "online": sorted(user for user, state in changes.items() if state == ONLINE),
        "offline": sorted(user for user, state in changes.items() if state == OFFLINE),
    }
