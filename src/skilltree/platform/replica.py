"""Reads from a PostgreSQL streaming replica, while it keeps up (docs/databases.md).

Which units of work read the replica is decided by the caller (platform/state.py: reading
requests of clients that did not write lately); this module decides whether the replica may be
used at all, and routes each statement of such a unit of work:

- Lag. The replica is used while it is at most `replica_max_lag_seconds` behind. The lag is
  measured from positions in the write-ahead log, not from the time of the last replayed
  transaction (which grows on an idle primary although nothing is missing): every check reads
  the primary's current position and remembers when it saw it; the replica is as far behind as
  the oldest remembered position it has not replayed yet. The resolution is one check
  (`replica_check_seconds`); checks run only while requests read, one at a time, and a request
  that arrives during a check uses the previous verdict.
- Down. A check that fails, or a replica connection that cannot be opened for a unit of work,
  sends reads to the primary until a later check succeeds.
- Writes. A reading unit of work that writes after all (a session's sliding expiry, an API key's
  last use) sends that statement, and every later one, to the primary: a hot standby refuses
  writes. Its replica transaction only read, so ending it changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from skilltree.platform.observability import metrics
from skilltree.platform.observability.logging import get_logger

log = get_logger("skilltree.replica")

# A check that takes longer than this counts as a failed one (the replica is not used).
CHECK_TIMEOUT_SECONDS = 2.0
# asyncpg's own connect timeout is a minute: a replica host that stopped answering would hold
# a reading request that long before it falls back to the primary.
CONNECT_TIMEOUT_SECONDS = 2.0

_PRIMARY_POSITION = text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
# NULL on a server that is not a standby (a promoted replica, or the primary named twice).
_REPLAYED_POSITION = text("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn")

NOT_CHECKED = "not checked yet"
_PRIMARY_BIND = "skilltree.primary_bind"
_REPLICA_BIND = "skilltree.replica_bind"
_ON_PRIMARY = "skilltree.on_primary"
_REPLICA_OPEN = "skilltree.replica_open"
_REPLICA = "skilltree.replica"

# Set while a unit of work reads the replica: how stale what it reads may be, in seconds. The
# cache (platform/cache.py) keeps what such a unit of work computes apart, for no longer than
# that, so a client reading its own write from the primary never gets an older copy from it.
_REPLICA_STALENESS: ContextVar[float | None] = ContextVar("skilltree_replica", default=None)


def replica_staleness() -> float | None:
    """How far behind the data of the current unit of work may be; None on the primary."""
    return _REPLICA_STALENESS.get()


@contextmanager
def reading_replica(staleness_seconds: float) -> Iterator[None]:
    token = _REPLICA_STALENESS.set(staleness_seconds)
    try:
        yield
    finally:
        try:
            _REPLICA_STALENESS.reset(token)
        except ValueError:  # ended in another context than it began: clear it there
            _REPLICA_STALENESS.set(None)


def _may_write(clause: Any) -> bool:
    """INSERT/UPDATE/DELETE, SELECT ... FOR UPDATE, and text whose intent is unknown."""
    if clause is None:
        return False
    if getattr(clause, "is_dml", False) or getattr(clause, "_for_update_arg", None) is not None:
        return True
    return not getattr(clause, "is_select", False)


class ReplicaRoutingSession(Session):
    """A session whose reads go to the replica until it first writes; from then on, the primary
    (so it reads what it wrote). Both binds arrive in the session's `info` (see `session_info`).

    The replica connection is opened with the first statement that reads it (a request answered
    from the cache opens none); when it cannot be opened (the replica went down since the last
    check), the unit of work reads the primary instead of failing."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kw: Any) -> Any:
        primary: Engine = self.info[_PRIMARY_BIND]
        if self.info.get(_ON_PRIMARY) or self._flushing or _may_write(clause):
            self.info[_ON_PRIMARY] = True
            return primary
        replica: Engine = self.info[_REPLICA_BIND]
        if not self.info.get(_REPLICA_OPEN):
            try:
                # Joins the session's transaction: the statement then runs on this connection.
                self.connection(bind_arguments={"bind": replica})
            except (exc.SQLAlchemyError, OSError, TimeoutError) as error:
                self.info[_REPLICA].unreachable(error)
                self.info[_ON_PRIMARY] = True
                return primary
            self.info[_REPLICA_OPEN] = True
        return replica


class Replica:
    """The replica's engine, and whether reads may go to it now."""

    def __init__(
        self,
        engine: AsyncEngine,
        primary: AsyncEngine,
        *,
        max_lag_seconds: float,
        check_seconds: float,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self._primary = primary
        self.max_lag_seconds = max_lag_seconds
        self._check_seconds = check_seconds
        self._timer = timer
        # (when, primary position) pairs the replica had not replayed at the last check.
        self._unreplayed: deque[tuple[float, int]] = deque()
        self._checked_at = float("-inf")
        self._usable = False
        self._reason = NOT_CHECKED
        self._checking = asyncio.Lock()
        self.lag_seconds: float | None = None

    @property
    def read_your_writes_seconds(self) -> float:
        """As DatabaseSettings.read_your_writes_seconds: the staleness of what it serves."""
        return self.max_lag_seconds + self._check_seconds

    def session_info(self) -> dict[str, Any]:
        return {
            _PRIMARY_BIND: self._primary.sync_engine,
            _REPLICA_BIND: self.engine.sync_engine,
            _REPLICA: self,
        }

    async def usable(self) -> bool:
        """Whether reads may go to the replica, checked at most every `replica_check_seconds`."""
        if self._timer() - self._checked_at < self._check_seconds or self._checking.locked():
            return self._usable
        async with self._checking:
            usable, reason = await self._check()
            self._checked_at = self._timer()
            self._record(usable, reason)
        return self._usable

    def unreachable(self, error: BaseException) -> None:
        """A unit of work could not open a replica connection: reads go to the primary until
        the next check finds it answering."""
        self._checked_at = self._timer()
        self.lag_seconds = None
        self._record(False, f"unreachable: {error}")

    async def _check(self) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                primary_position = await _scalar(self._primary, _PRIMARY_POSITION)
                replayed = await _scalar(self.engine, _REPLAYED_POSITION)
        except (exc.SQLAlchemyError, OSError, TimeoutError) as error:
            self.lag_seconds = None
            return False, f"unreachable: {error.__class__.__name__}: {error}"
        if replayed is None:
            self.lag_seconds = None
            return False, "not a standby (pg_last_wal_replay_lsn() is NULL)"
        now = self._timer()
        self._unreplayed.append((now, int(primary_position)))
        while self._unreplayed and self._unreplayed[0][1] <= int(replayed):
            self._unreplayed.popleft()
        self.lag_seconds = now - self._unreplayed[0][0] if self._unreplayed else 0.0
        if self.lag_seconds > self.max_lag_seconds:
            return False, f"{self.lag_seconds:.1f} s behind the primary"
        return True, ""

    def _record(self, usable: bool, reason: str) -> None:
        """Keep the verdict; log it when it changes (not at every check)."""
        if usable != self._usable or self._reason == NOT_CHECKED:
            if usable:
                log.info("reads go to the replica", lag_seconds=self.lag_seconds)
            else:
                log.warning("reads go to the primary", reason=reason)
        self._usable = usable
        self._reason = reason
        metrics.REPLICA_READS.set(1 if usable else 0)
        metrics.REPLICA_LAG.set(-1 if self.lag_seconds is None else self.lag_seconds)

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _scalar(engine: AsyncEngine, query: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(query)).scalar_one()
