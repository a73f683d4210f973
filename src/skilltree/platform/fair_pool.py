"""A connection pool that serves waiting requests in the order they asked.

SQLAlchemy's asyncio pool keeps idle connections in an `asyncio.Queue` and takes one without
waiting whenever one is idle, even while other requests wait for one. When a connection comes
back, the longest waiter is woken, but before it runs, any request that reaches the pool first
takes the connection, and the woken waiter queues again at the back. Under load (more requests
in flight than connections) some requests are overtaken again and again: the median stays low
and the slowest requests wait seconds.

`FairQueue` hands a returned connection straight to the longest waiter, and a request that finds
others waiting waits behind them. Nothing else changes: the pool's size, overflow, timeout,
recycling and pre-ping are SQLAlchemy's. See docs/decisions/0009-fair-connection-pool.md.

The line is bounded (load shedding): when `max_waiting` requests already wait, the next one is
refused at once with `ServiceOverloaded` (a 503 with Retry-After) rather than joining a queue
whose tail would wait longer than any client does. Under overload the requests that are admitted
stay fast, and the rest learn so in a millisecond instead of timing out after seconds.

Overflow connections are kept while the load lasts (decision 0075). SQLAlchemy closes an
overflow connection (one beyond `pool_size`) the moment it comes back while `pool_size` others
are idle. A worker whose requests in flight hover around `pool_size` — two workers sharing a
load that one would run at a steady `pool_size + max_overflow` — then opens and closes
connections several times a second, and each opening costs a PostgreSQL backend and the
driver's setup statements. Here such a connection is kept aside as a spare instead, handed out
once the idle ones are taken (before any new one is opened), and closed once it has been idle
`spare_idle_seconds`: the connections in use follow the load up at once and down within that
time. The most recently returned spare goes first, so the surplus ones age out.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

from skilltree.platform.errors import ServiceOverloaded
from skilltree.platform.observability.metrics import DB_POOL_SHED


class FairQueue(AsyncAdaptedQueue[ConnectionPoolEntry]):
    """Idle connections, and the requests waiting for one in arrival order."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[ConnectionPoolEntry]] = deque()
        self.max_waiting: int | None = None  # None: the line has no bound
        # Overflow connections kept while `maxsize` others are idle, with when each came back;
        # the newest last.
        self._spares: deque[tuple[ConnectionPoolEntry, float]] = deque()

    def qsize(self) -> int:
        return self._queue.qsize() + len(self._spares)

    def idle_ones_fill_it(self) -> bool:
        """Whether `maxsize` connections are idle (the queue proper is full)."""
        return self._queue.full()

    def keep_spare(self, item: ConnectionPoolEntry, now: float) -> None:
        """Keep an overflow connection that came back while the idle ones fill the queue."""
        self._spares.append((item, now))

    def idle_spares(self, idle_since: float) -> list[ConnectionPoolEntry]:
        """Take out the spares that came back before `idle_since`, for the pool to close."""
        retired = []
        while self._spares and self._spares[0][1] < idle_since:
            retired.append(self._spares.popleft()[0])
        return retired

    def put(
        self, item: ConnectionPoolEntry, block: bool = True, timeout: float | None = None
    ) -> None:
        # The pool returns connections with block=False; there is never a reason to wait here.
        self.put_nowait(item)

    def put_nowait(self, item: ConnectionPoolEntry) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter that timed out or was cancelled is skipped
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        if not self._waiters:  # nobody is ahead: an idle connection is this request's
            try:
                return super().get_nowait()
            except Empty:
                pass
            if self._spares:  # before the pool opens a new one
                return self._spares.pop()[0]
        if not block:  # the pool will open an overflow connection instead
            raise Empty()
        if self.max_waiting is not None and self.waiting() >= self.max_waiting:
            DB_POOL_SHED.inc()
            raise ServiceOverloaded(
                "Every database connection is busy and the line of requests waiting for one is "
                "full; retry after the time in Retry-After."
            )
        waiter: asyncio.Future[ConnectionPoolEntry] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        result: ConnectionPoolEntry = await_(self._wait(waiter, wait_seconds=timeout))
        return result

    async def _wait(
        self, waiter: asyncio.Future[ConnectionPoolEntry], *, wait_seconds: float | None
    ) -> ConnectionPoolEntry:
        try:
            async with asyncio.timeout(wait_seconds):
                return await waiter
        except TimeoutError:
            self._give_up(waiter)
            raise Empty() from None
        except BaseException:  # cancelled while waiting: the request is gone
            self._give_up(waiter)
            raise

    def waiting(self) -> int:
        """Requests waiting for a connection right now."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def _give_up(self, waiter: asyncio.Future[ConnectionPoolEntry]) -> None:
        """Leave the line. A connection handed over in the same instant is passed on, not lost."""
        if waiter.done() and not waiter.cancelled():
            self.put_nowait(waiter.result())
            return
        waiter.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)


class FairQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool, with connections handed out first come, first served."""

    _queue_class: Any = FairQueue
    # How many requests may wait for a connection (None: no bound); see `with_line_of`.
    max_waiting: int | None = None
    # How long an overflow connection may stay idle before it is closed (0: it is closed as it
    # comes back, as SQLAlchemy's pool does).
    spare_idle_seconds: float = 0.0
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("FairQueue", self._pool).max_waiting = self.max_waiting

    @classmethod
    def with_line_of(
        cls, max_waiting: int, *, spare_idle_seconds: float = 0.0
    ) -> type[FairQueuePool]:
        """This pool class with a bounded waiting line, keeping overflow connections for
        `spare_idle_seconds`. A class, not arguments, because SQLAlchemy builds pools from a
        class and rebuilds them (`dispose()`) from `type(pool)`."""
        attributes = {"max_waiting": max_waiting, "spare_idle_seconds": spare_idle_seconds}
        return type(cls.__name__, (cls,), attributes)

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        queue = cast("FairQueue", self._pool)
        now = self.clock()
        # Full means `pool_size` idle and nobody waiting (a waiter is handed a connection as
        # it comes back): SQLAlchemy would close this overflow connection now.
        if self.spare_idle_seconds > 0 and queue.idle_ones_fill_it():
            queue.keep_spare(record, now)
        else:
            super()._do_return_conn(record)
        self._close_idle_spares(now)

    def _do_get(self) -> ConnectionPoolEntry:
        self._close_idle_spares(self.clock())
        return super()._do_get()

    def _close_idle_spares(self, now: float) -> None:
        if self.spare_idle_seconds <= 0:
            return
        queue = cast("FairQueue", self._pool)
        for record in queue.idle_spares(now - self.spare_idle_seconds):
            try:
                record.close()
            finally:
                self._dec_overflow()

    def waiting(self) -> int:
        """Requests waiting for a connection right now."""
        return cast("FairQueue", self._pool).waiting()
