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
"""

from __future__ import annotations

import asyncio
from collections import deque
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("FairQueue", self._pool).max_waiting = self.max_waiting

    @classmethod
    def with_line_of(cls, max_waiting: int) -> type[FairQueuePool]:
        """This pool class with a bounded waiting line. A class, not an argument, because
        SQLAlchemy builds pools from a class and rebuilds them (`dispose()`) from `type(pool)`."""
        return type(cls.__name__, (cls,), {"max_waiting": max_waiting})

    def waiting(self) -> int:
        """Requests waiting for a connection right now."""
        return cast("FairQueue", self._pool).waiting()
