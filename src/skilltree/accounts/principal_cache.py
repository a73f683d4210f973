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

The caller's organisation roles are kept beside the caller, by user, the same way (decision
0067): organisations mark the users whose memberships a unit of work changes with
`forget_roles_on_commit` (a mapper event marks every changed membership row, a statement that
changes memberships or organisations in bulk marks everyone), and the commit's announcement
carries them under "roles"; a sign-in's announcement forgets the user's roles too. Roles are
looked up within the request's unit of work, so `bind` records the generation as the unit of
work opens, before its first statement: roles read by a transaction that began before an
invalidation are never kept.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
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
# The users a unit of work changed the organisation roles of.
_ROLES_CHANGED = "skilltree.roles_changed"
# The cache bound to a unit of work, and its generation when the unit of work opened.
_BOUND = "skilltree.principal_cache"
EVERYONE = 0  # no user has id 0: "forget every caller"
_USER_MAPPER = inspect(User)


@dataclass(frozen=True, slots=True)
class Remembered:
    """A caller as found, with what a hit must still check against the request's clock."""

    signed_in: SignedIn
    expires_at: datetime | None  # the credential's own end (token, key); sessions carry theirs
    last_used_at: datetime | None  # an API key's recorded last use
    epoch: int


@dataclass(frozen=True, slots=True)
class KeptRoles:
    """A user's organisation roles (organisation id -> role), as the epoch they were kept in
    knew them."""

    roles: Mapping[int, str]
    epoch: int


def credential_key(kind: str, secret: str) -> str:
    """The cache key of a credential: a digest, so a memory dump shows no credential."""
    return f"{kind}:{hashlib.blake2b(secret.encode(), digest_size=16).hexdigest()}"


def session_key(token_hash: str) -> str:
    """The cache key of a browser session: the digest of its secret, as its store keys it."""
    return f"session:{token_hash}"


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
        # Organisation roles by user id: what a Viewer needs beside the caller.
        self._roles: TTLCache[int, KeptRoles] = TTLCache(
            maxsize=max_entries, ttl=max(ttl_seconds, 0.001), timer=timer
        )
        self._generation = 0
        # Hears the announcements; a gap (an overflow, a reconnection) forgets every caller.
        self._listener = ChannelListener(
            broadcaster, CHANNEL, on_message=self._heard_of, on_gap=self.forget_everything
        )
        self._started = False
        self.hits = 0
        self.role_hits = 0
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

    def find_roles(self, user_id: int) -> Mapping[int, str] | None:
        if not self.usable():
            return None
        found = self._roles.get(user_id)
        if found is None or found.epoch != self._broadcaster.epoch:
            return None
        self.role_hits += 1
        return found.roles

    def keep_roles(self, user_id: int, roles: Mapping[int, str], *, generation: int) -> None:
        """Keep roles looked up by a unit of work that opened at `generation`; refused when
        any invalidation came since (the lookup may have read what it changed)."""
        if not self.usable() or generation != self._generation:
            return
        self._roles[user_id] = KeptRoles(MappingProxyType(dict(roles)), self._broadcaster.epoch)

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
        self._forget_kept_roles(user_ids)

    def forget_roles(self, user_ids: set[int]) -> None:
        """Forget these users' organisation roles (everyone's, for EVERYONE); their sign-ins
        stay."""
        self._generation += 1
        if EVERYONE in user_ids:
            self._roles.clear()
        else:
            self._forget_kept_roles(user_ids)

    def _forget_kept_roles(self, user_ids: Iterable[int]) -> None:
        for user_id in user_ids:
            self._roles.pop(user_id, None)

    def forget_everything(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._roles.clear()

    async def announce(self, user_ids: set[int], *, roles_of: set[int] | None = None) -> None:
        """After a committed change: forget here at once, and tell every other instance. The
        sign-ins (and roles) of `user_ids`, the organisation roles alone of `roles_of`."""
        roles_of = roles_of or set()
        if user_ids:
            self.forget_users(user_ids)
        if roles_of:
            self.forget_roles(roles_of)
        message: dict[str, list[int]] = {"users": sorted(user_ids)}
        if roles_of:
            message["roles"] = sorted(roles_of)
        try:
            await self._broadcaster.publish(CHANNEL, message, keep=False)
        except (RedisError, OSError) as error:
            # The others' entries expire within the cache's TTL; with Redis down they are
            # not used at all (`usable`).
            log.warning("principals.announce_failed", error=repr(error))

    def bind(self, session: AsyncSession) -> None:
        """Announce, once the unit of work commits, the users it marked; and let the unit of
        work use the kept roles (`bound_to`), with the generation as it opens."""
        session.info[_BOUND] = (self, self._generation)

        async def announce_marked() -> None:
            marked: set[int] = session.info.pop(_CHANGED, set())
            roles_marked: set[int] = session.info.pop(_ROLES_CHANGED, set())
            if marked or roles_marked:
                await self.announce(marked, roles_of=roles_marked)

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
        roles = delivery.message.get("roles", [])
        if roles:
            self.forget_roles({u for u in roles if isinstance(u, int)})


def forget_on_commit(session: AsyncSession, user_id: int) -> None:
    """Mark `user_id`'s sign-ins as changed: every instance forgets them once this commits."""
    session.info.setdefault(_CHANGED, set()).add(user_id)


def forget_roles_on_commit(session: AsyncSession | Session, user_id: int) -> None:
    """Mark `user_id`'s organisation roles as changed (EVERYONE: every user's): every instance
    forgets them once this commits."""
    session.info.setdefault(_ROLES_CHANGED, set()).add(user_id)


def changes_roles(session: AsyncSession) -> bool:
    """Whether this unit of work has changed anyone's organisation roles (so far as flushed)."""
    return bool(session.info.get(_ROLES_CHANGED))


def bound_to(session: AsyncSession) -> tuple[PrincipalCache, int] | None:
    """The cache bound to this unit of work and its generation when the unit of work opened,
    or None (a process that keeps no callers: a worker, a command)."""
    bound: tuple[PrincipalCache, int] | None = session.info.get(_BOUND)
    return bound


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
