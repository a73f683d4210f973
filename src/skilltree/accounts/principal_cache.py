"""The caller behind a credential, kept in this process's memory between requests.

Finding who sent a request costs one to three lookups (the session or token family, the user,
an API key). A client sends the same credential with every request, and the answer changes
only when someone signs out, revokes a key or token, changes a password, or an account itself
changes (administrator flag, verified e-mail, second factor). So each process keeps the
answer, keyed by a digest of the credential, and forgets it when it is told to:

    a change      accounts marks the user with `forget_on_commit(db, user_id)` (sign-out,
                  revocation) or by changing their `User` row (a mapper event marks it);
    the commit    the unit of work's after-commit callback (bound by `bind`) forgets the
                  user here and publishes their id on the broadcast channel "principals";
    every other   its listener forgets the user as the message arrives (Redis pub/sub: a
    instance      millisecond or two), so a revoked credential is refused at once everywhere.

Pub/sub is at-most-once, so the cache answers only while the broadcaster says every message
reaches this process (`Broadcaster.connected`), and only entries kept since its current
connection (`epoch`): while Redis is unreachable every request looks its caller up, as if
there were no cache, and after a reconnection nothing kept before it is trusted (the listener,
platform/broadcast.py's ChannelListener, also forgets every caller at any gap). Entries also
expire (SKILLTREE_AUTH_PRINCIPAL_CACHE_SECONDS), which bounds what a message lost while the
connection looked healthy could leave stale. See docs/decisions/0044-principal-cache.md.

A browser session in Redis can also vanish without any announcement (FLUSHDB, eviction): a kept
session is checked against its store on every hit (accounts/authentication.py, decision 0058).

A lookup that began before an invalidation does not store its (possibly older) answer: every
invalidation bumps a generation, and `keep` refuses an answer found under an older one.

Organisation roles are not part of the cached caller (routes that need them build a `Viewer`
per request), so an organisation's changes are immediate without any message.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from redis.exceptions import RedisError
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from skilltree.accounts.models import User
from skilltree.platform.broadcast import Broadcaster, ChannelListener, Delivery
from skilltree.platform.config import AuthSettings
from skilltree.platform.db import after_commit
from skilltree.platform.observability.logging import get_logger

if TYPE_CHECKING:
    from skilltree.accounts.context import SignedIn

log = get_logger("skilltree.accounts")

CHANNEL = "principals"
# The users a unit of work changed the sign-ins of, in its session's info.
_CHANGED = "skilltree.principals_changed"
EVERYONE = 0  # no user has id 0: "forget every caller"
_USER_MAPPER = inspect(User)


@dataclass(frozen=True, slots=True)
class Remembered:
    """A caller as found, with what a hit must still check against the request's clock."""

    signed_in: SignedIn
    expires_at: datetime | None  # the credential's own end (token, key); sessions carry theirs
    last_used_at: datetime | None  # an API key's recorded last use
    epoch: int


def credential_key(kind: str, secret: str) -> str:
    """The cache key of a credential: a digest, so a memory dump shows no credential."""
    return f"{kind}:{hashlib.blake2b(secret.encode(), digest_size=16).hexdigest()}"


class PrincipalCache:
    """Callers by credential, bounded and short-lived, forgotten on every announced change."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        *,
        ttl_seconds: float,
        max_entries: int,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broadcaster = broadcaster
        self._enabled = ttl_seconds > 0
        self._entries: TTLCache[str, Remembered] = TTLCache(
            maxsize=max_entries, ttl=max(ttl_seconds, 0.001), timer=timer
        )
        self._generation = 0
        # Hears the announcements; a gap (an overflow, a reconnection) forgets every caller.
        self._listener = ChannelListener(
            broadcaster, CHANNEL, on_message=self._heard_of, on_gap=self.forget_everything
        )
        self._started = False
        self.hits = 0
        self.heard = 0  # invalidations received from the channel

    # -- reading and storing ---------------------------------------------------------------

    def usable(self) -> bool:
        """Whether an answer kept now would hear of its revocation."""
        return (
            self._enabled
            and self._started
            and self._listener.listening
            and self._broadcaster.connected
        )

    def find(self, key: str) -> Remembered | None:
        if not self.usable():
            return None
        found = self._entries.get(key)
        if found is None or found.epoch != self._broadcaster.epoch:
            return None
        self.hits += 1
        return found

    def generation(self) -> int:
        """Read before a lookup; hand it to `keep` with the lookup's answer."""
        return self._generation

    def keep(
        self,
        key: str,
        signed_in: SignedIn,
        *,
        generation: int,
        expires_at: datetime | None = None,
        last_used_at: datetime | None = None,
    ) -> None:
        if not self.usable() or generation != self._generation:
            return  # an invalidation came while this answer was being looked up
        self._entries[key] = Remembered(
            signed_in, expires_at, last_used_at, self._broadcaster.epoch
        )

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    # -- forgetting ------------------------------------------------------------------------

    def forget_users(self, user_ids: set[int]) -> None:
        if EVERYONE in user_ids:
            self.forget_everything()
            return
        self._generation += 1
        # A scan, not an index by user: revocations are rare next to reads, and 10,000
        # entries take well under a millisecond.
        for key in [k for k, v in list(self._entries.items()) if v.signed_in.user.id in user_ids]:
            self._entries.pop(key, None)

    def forget_everything(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def announce(self, user_ids: set[int]) -> None:
        """After a committed change: forget here at once, and tell every other instance."""
        self.forget_users(user_ids)
        try:
            await self._broadcaster.publish(CHANNEL, {"users": sorted(user_ids)}, keep=False)
        except (RedisError, OSError) as error:
            # The others' entries expire within the cache's TTL; with Redis down they are
            # not used at all (`usable`).
            log.warning("principals.announce_failed", error=repr(error))

    def bind(self, session: AsyncSession) -> None:
        """Announce, once the unit of work commits, the users it marked."""

        async def announce_marked() -> None:
            marked: set[int] = session.info.pop(_CHANGED, set())
            if marked:
                await self.announce(marked)

        after_commit(session, announce_marked)

    # -- listening -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._enabled and not self._started:
            self._started = True
            self._listener.start()

    async def close(self) -> None:
        self._started = False
        await self._listener.close()

    def _heard_of(self, delivery: Delivery) -> None:
        self.heard += 1
        users = delivery.message.get("users", [])
        self.forget_users({u for u in users if isinstance(u, int)})


def forget_on_commit(session: AsyncSession, user_id: int) -> None:
    """Mark `user_id`'s sign-ins as changed: every instance forgets them once this commits."""
    session.info.setdefault(_CHANGED, set()).add(user_id)


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
def _user_row_changed(_mapper: Any, _connection: Any, user: User) -> None:
    # Any change to the row may change what a cached caller says (administrator, verified
    # e-mail, second factor, name): marking here covers every flow, present and future.
    session = Session.object_session(user)
    if session is not None:
        session.info.setdefault(_CHANGED, set()).add(user.id)


@event.listens_for(Session, "do_orm_execute")
def _users_updated_in_bulk(state: ORMExecuteState) -> None:
    # `update(User)...` (an operator's command, a fixture) names no rows the mapper events
    # see: forget every caller. Rare, and never on a request's path.
    if (state.is_update or state.is_delete) and state.bind_mapper is _USER_MAPPER:
        state.session.info.setdefault(_CHANGED, set()).add(EVERYONE)


_CACHES: weakref.WeakKeyDictionary[Broadcaster, PrincipalCache] = weakref.WeakKeyDictionary()


def principal_cache_for(broadcaster: Broadcaster, auth: AuthSettings) -> PrincipalCache:
    """The one cache of the app (or command) that owns `broadcaster`. Until its `start` (the
    app's lifespan) it keeps nothing, but still announces the changes it is bound to."""
    cache = _CACHES.get(broadcaster)
    if cache is None:
        cache = PrincipalCache(
            broadcaster,
            ttl_seconds=auth.principal_cache_seconds,
            max_entries=auth.principal_cache_size,
        )
        _CACHES[broadcaster] = cache
    return cache
