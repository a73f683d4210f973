"""Process-wide resources, created by the app lifespan and reached through typed dependencies."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any

from anyio import CancelScope
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.broadcast import Broadcaster, LocalBroadcaster
from skilltree.platform.cache import Cache
from skilltree.platform.clock import Clock
from skilltree.platform.config import Settings
from skilltree.platform.crypto import SecretBox, secret_box
from skilltree.platform.db import (
    KEEP_CHANGES,
    Database,
    DeferredSession,
    keeps_changes,
    shared_request_session,
)
from skilltree.platform.http.read_your_writes import READING_METHODS, wrote_lately
from skilltree.platform.pagination import CursorCodec
from skilltree.platform.queue.client import TaskQueue
from skilltree.platform.transactional_mail import TransactionalMailer


@dataclass(frozen=True)
class Resources:
    settings: Settings
    database: Database
    clock: Clock
    # E-mail caused by a change, enqueued in the change's transaction.
    mailer: TransactionalMailer
    # Publishes background tasks; work decided inside a transaction goes through the outbox.
    queue: TaskQueue
    # Ready-to-send representations (docs/performance.md, "Caching").
    cache: Cache
    # Set when SKILLTREE_REDIS_URL is: the state every instance must share lives there.
    redis: Redis | None = None
    # Keys derived from SKILLTREE_SECRET_KEY once, with the resources (HKDF is start-up work):
    # secrets at rest (TOTP seeds, webhook secrets, stored idempotent responses) and cursors.
    secret_box: SecretBox = field(init=False)
    cursors: CursorCodec = field(init=False)

    def __post_init__(self) -> None:
        keys = self.settings.app
        box = secret_box(keys.secret_key, tuple(keys.previous_secret_keys))
        object.__setattr__(self, "secret_box", box)
        object.__setattr__(self, "cursors", CursorCodec(keys.secret_key))

    # Live messages to streams and sockets: in-process, or through Redis (platform/broadcast.py).
    broadcaster: Broadcaster = field(default_factory=LocalBroadcaster)


def resources_of(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def` dependency
# in a worker thread, a hop to another thread and back on every request that uses it
# (tests/test_app.py enforces this for every route).
async def get_resources(request: Request) -> Resources:
    return resources_of(request)


# Requests that change nothing (READING_METHODS): on SQLite their units of work read side by
# side instead of queueing for the write lock (platform/db.py); with a read replica they read
# it, unless the client wrote lately (platform/http/read_your_writes.py).


async def get_session(request: Request) -> AsyncSession:
    """One unit of work per request: commit when the handler succeeds, roll back when it raises.

    Not a dependency with `yield`: FastAPI wraps each of those in an exit stack entry, a
    context manager and two cancel scopes, a tenth of the CPU of a request that runs no
    statement. The unit of work's end goes on the same exit stack (the one of the route's
    function scope, which closes before the response is sent) by hand, and for most requests
    only once the session is first used (decision 0072): a request that never reaches the
    database opens no session and ends none."""
    exits = _function_exits(request)
    shared = shared_request_session()
    if shared is not None:
        # Committed (or not) by the layer that opened it, which reads what the route decided.
        exits.push_async_exit(_KeepChanges(shared))
        return shared
    writes = request.method not in READING_METHODS
    from_replica = not writes and not wrote_lately(request.cookies)
    database = resources_of(request).database
    if database.opens_at_first_use(writes=writes, from_replica=from_replica):

        def when_opened(session: DeferredSession) -> None:
            exits.push_async_exit(_Ending(session))

        return database.deferred_unit_of_work(writes=writes, when_opened=when_opened)
    unit_of_work = database.unit_of_work(writes=writes, from_replica=from_replica)
    return await exits.enter_async_context(unit_of_work)


def _function_exits(request: Request) -> AsyncExitStack:
    """The exit stack FastAPI closes when the route's function scope ends (before the response
    is sent): where a dependency with `yield` and `scope="function"` would be ended."""
    exits: AsyncExitStack = request.scope["fastapi_function_astack"]
    return exits


class _Ending:
    """Ends a deferred unit of work with the route's outcome (an exit stack callback)."""

    __slots__ = ("session",)

    def __init__(self, session: DeferredSession) -> None:
        self.session = session

    async def __call__(
        self, _type: type[BaseException] | None, error: BaseException | None, _tb: Any
    ) -> bool:
        # Shielded, as FastAPI shields the exit of a dependency with `yield`: a request
        # cancelled while its unit of work commits still commits or rolls back, and closes.
        with CancelScope(shield=True):
            await self.session.end(error)
        return False  # the route's error, if any, goes on


class _KeepChanges:
    """Tells the layer that opened a shared unit of work whether the route kept its changes."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __call__(
        self, _type: type[BaseException] | None, error: BaseException | None, _tb: Any
    ) -> bool:
        self.session.info[KEEP_CHANGES] = keeps_changes(error)
        return False


async def get_cache(request: Request) -> Cache:
    return resources_of(request).cache


AppResources = Annotated[Resources, Depends(get_resources)]
AppCache = Annotated[Cache, Depends(get_cache)]
# The unit of work ends with the route's function scope, before the response is sent, so a
# failed commit becomes an error response instead of a 200 for data that was never stored.
DbSession = Annotated[AsyncSession, Depends(get_session)]
