"""Where browser sessions live: the database (embedded default) or Redis (production).

A session is looked up by the SHA-256 digest of the cookie's secret, never by the secret itself,
so a leaked table or Redis dump opens no session. Both stores keep the same record and obey the
same contract (tests/accounts/test_sessions.py runs one suite against each); the service decides
what is live with its own clock, and Redis's TTL only removes what nobody can use any more.

The database store writes inside the request's transaction. Redis is not part of that
transaction: a session opened by a request that then fails stays in Redis until its TTL, but its
secret was never sent to anyone, so nobody can use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Protocol

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.models import BrowserSession


@dataclass
class SessionRecord:
    id: int
    user_id: int
    token_hash: str
    # Synchronizer token: cookie-authenticated unsafe requests must echo it in X-CSRF-Token.
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    user_agent: str
    ip: str

    def is_live(self, now: datetime) -> bool:
        return now < self.idle_expires_at and now < self.absolute_expires_at

    @property
    def expires_at(self) -> datetime:
        return min(self.idle_expires_at, self.absolute_expires_at)


class SessionStore(Protocol):
    """Every method takes the request's database session; the Redis store ignores it."""

    async def open(self, db: AsyncSession, record: SessionRecord) -> SessionRecord:
        """Store a new session (its `id` is assigned here) and return it."""

    async def find(self, db: AsyncSession, token_hash: str) -> SessionRecord | None: ...

    async def still_stored(self, token_hash: str) -> bool:
        """Whether a session found earlier (and kept in the principal cache) is still stored:
        no database session needed, so that a read answered before the application can ask."""

    async def save_activity(self, db: AsyncSession, record: SessionRecord) -> None:
        """Persist a slid `last_seen_at` / `idle_expires_at`."""

    async def list_live(self, db: AsyncSession, user_id: int, now: datetime) -> list[SessionRecord]:
        """The user's live sessions, most recently used first."""

    async def delete(self, db: AsyncSession, user_id: int, session_id: int) -> bool:
        """End one of the user's sessions; False if they have no such session."""

    async def delete_all(self, db: AsyncSession, user_id: int) -> None:
        """End every session of the user."""


class DatabaseSessionStore:
    """Sessions as rows of `browser_sessions`, in the request's transaction."""

    async def open(self, db: AsyncSession, record: SessionRecord) -> SessionRecord:
        row = BrowserSession(**{k: v for k, v in asdict(record).items() if k != "id"})
        repository.add(db, row)
        await repository.flush(db)
        return replace(record, id=row.id)

    async def find(self, db: AsyncSession, token_hash: str) -> SessionRecord | None:
        row = await repository.get_browser_session(db, token_hash)
        return None if row is None else _record(row)

    async def still_stored(self, token_hash: str) -> bool:
        # No statement: rows leave this table only through flows that announce it to every
        # principal cache (sign-out, ending sessions), or once expired, which a kept session
        # checks against the request's clock itself.
        return True

    async def save_activity(self, db: AsyncSession, record: SessionRecord) -> None:
        await repository.touch_browser_session(
            db, record.id, last_seen_at=record.last_seen_at, idle_expires_at=record.idle_expires_at
        )

    async def list_live(self, db: AsyncSession, user_id: int, now: datetime) -> list[SessionRecord]:
        return [_record(row) for row in await repository.list_browser_sessions(db, user_id, now)]

    async def delete(self, db: AsyncSession, user_id: int, session_id: int) -> bool:
        return await repository.delete_browser_session(db, user_id, session_id)

    async def delete_all(self, db: AsyncSession, user_id: int) -> None:
        await repository.delete_browser_sessions(db, user_id)


def _record(row: BrowserSession) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        idle_expires_at=row.idle_expires_at,
        absolute_expires_at=row.absolute_expires_at,
        user_agent=row.user_agent,
        ip=row.ip,
    )


class RedisSessionStore:
    """Sessions in Redis, shared by every instance of the service.

    Keys (under the configured prefix):
        session:<token hash>   a hash with the record's fields
        session-id:<id>        the token hash of session <id>, to end a session by its id
        user-sessions:<user>   a set of the user's token hashes, to list or end them all
        session-seq            the counter that numbers sessions
    Each session key expires when the session does (idle or absolute, whichever is first); a
    user's set may briefly name expired sessions, which reads skip and prune.
    """

    def __init__(self, redis: Redis, prefix: str, clock_now: _Now) -> None:
        self._redis = redis
        self._prefix = prefix
        self._now = clock_now

    async def open(self, db: AsyncSession, record: SessionRecord) -> SessionRecord:
        session_id = int(await self._redis.incr(self._key("session-seq")))
        record = replace(record, id=session_id)
        ttl = self._ttl(record)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key("session", record.token_hash), mapping=_to_hash(record))
            pipe.expire(self._key("session", record.token_hash), ttl)
            pipe.set(self._key("session-id", str(session_id)), record.token_hash, ex=ttl)
            pipe.sadd(self._key("user-sessions", str(record.user_id)), record.token_hash)
            pipe.expire(self._key("user-sessions", str(record.user_id)), ttl, gt=True)
            pipe.expire(self._key("user-sessions", str(record.user_id)), ttl, nx=True)
            await pipe.execute()
        return record

    async def find(self, db: AsyncSession, token_hash: str) -> SessionRecord | None:
        fields = await self._redis.hgetall(self._key("session", token_hash))
        return _from_hash(fields) if fields else None

    async def still_stored(self, token_hash: str) -> bool:
        # Redis can lose a record without anyone signing out: FLUSHDB, a restart of a server
        # that keeps nothing on disk, eviction under memory pressure. Nothing announces that,
        # so a kept session asks (one round trip; the user's row still comes from memory).
        return bool(await self._redis.exists(self._key("session", token_hash)))

    async def save_activity(self, db: AsyncSession, record: SessionRecord) -> None:
        # One script, so a session ended meanwhile (logout on another device) is not brought
        # back as a half-written hash.
        await self._redis.eval(
            _SLIDE_IF_PRESENT,
            2,
            self._key("session", record.token_hash),
            self._key("session-id", str(record.id)),
            record.last_seen_at.isoformat(),
            record.idle_expires_at.isoformat(),
            self._ttl(record),
        )

    async def list_live(self, db: AsyncSession, user_id: int, now: datetime) -> list[SessionRecord]:
        user_key = self._key("user-sessions", str(user_id))
        hashes = sorted(_text(h) for h in await self._redis.smembers(user_key))
        if not hashes:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for token_hash in hashes:
                pipe.hgetall(self._key("session", token_hash))
            found = await pipe.execute()
        records = [_from_hash(fields) for fields in found if fields]
        gone = [h for h, fields in zip(hashes, found, strict=True) if not fields]
        if gone:
            await self._redis.srem(user_key, *gone)
        live = [r for r in records if r.is_live(now)]
        return sorted(live, key=lambda r: (r.last_seen_at, r.id), reverse=True)

    async def delete(self, db: AsyncSession, user_id: int, session_id: int) -> bool:
        token_hash = await self._redis.get(self._key("session-id", str(session_id)))
        if token_hash is None:
            return False
        record = await self.find(db, _text(token_hash))
        if record is None or record.user_id != user_id:
            return False  # another user's session is as unknown as a missing one
        await self._remove(record)
        return True

    async def delete_all(self, db: AsyncSession, user_id: int) -> None:
        user_key = self._key("user-sessions", str(user_id))
        hashes = sorted(_text(h) for h in await self._redis.smembers(user_key))
        async with self._redis.pipeline(transaction=True) as pipe:
            for token_hash in hashes:
                pipe.hget(self._key("session", token_hash), "id")
                pipe.delete(self._key("session", token_hash))
            found = await pipe.execute()
        session_ids = [_text(value) for value in found[::2] if value is not None]
        if session_ids:
            await self._redis.delete(*(self._key("session-id", i) for i in session_ids))
        await self._redis.delete(user_key)

    async def _remove(self, record: SessionRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("session", record.token_hash))
            pipe.delete(self._key("session-id", str(record.id)))
            pipe.srem(self._key("user-sessions", str(record.user_id)), record.token_hash)
            await pipe.execute()

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _ttl(self, record: SessionRecord) -> int:
        # At least a second: EXPIRE with 0 would delete the key at once.
        return max(1, math.ceil((record.expires_at - self._now()).total_seconds()))


_SLIDE_IF_PRESENT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1], 'idle_expires_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


class _Now(Protocol):
    def __call__(self) -> datetime: ...


def _to_hash(record: SessionRecord) -> dict[FieldT, EncodableT]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else str(value)
        for key, value in asdict(record).items()
    }


def _text(value: bytes | str) -> str:
    # The client decodes replies (decode_responses=True); the types cannot know that.
    return value.decode() if isinstance(value, bytes) else value


def _from_hash(raw: Mapping[bytes | str, bytes | str]) -> SessionRecord:
    fields = {_text(key): _text(value) for key, value in raw.items()}
    return SessionRecord(
        id=int(fields["id"]),
        user_id=int(fields["user_id"]),
        token_hash=fields["token_hash"],
        csrf_token=fields["csrf_token"],
        created_at=datetime.fromisoformat(fields["created_at"]),
        last_seen_at=datetime.fromisoformat(fields["last_seen_at"]),
        idle_expires_at=datetime.fromisoformat(fields["idle_expires_at"]),
        absolute_expires_at=datetime.fromisoformat(fields["absolute_expires_at"]),
        user_agent=fields["user_agent"],
        ip=fields["ip"],
    )
