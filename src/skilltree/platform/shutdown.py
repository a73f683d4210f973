"""Hearing that the server was told to stop, before it waits for open connections.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections and then waits, up to its graceful
timeout, for every open one to finish. A stream or a socket that is open for hours would make
it wait the whole timeout and then be cut off without a word. So the lifespan chains a handler
in front of the server's own: it drains the live connections (each closes, saying why: an SSE
`shutdown` event, a WebSocket close 1012 with a reason), and only once that is done hands the
signal on to the server's handler.

Handing it on at once would race: uvicorn looks at its stop flag every tenth of a second, and
once set it shuts every open connection itself (a WebSocket gets 1012 with no reason) in the
same step. A drain started by the signal needs a few turns of the event loop to reach the
sockets, so under load uvicorn was sometimes first. The drain is bounded (its caller's grace
period), and a second signal is handed on at once, so Ctrl-C twice still stops at once.

Signal handlers belong to the main thread; elsewhere (an app run inside a test) this does
nothing.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from skilltree.platform.observability.logging import get_logger

SIGNALS = (signal.SIGINT, signal.SIGTERM)
log = get_logger("skilltree.shutdown")


@contextmanager
def on_termination(
    drain: Callable[[], Awaitable[None]], loop: asyncio.AbstractEventLoop
) -> Iterator[None]:
    """On SIGINT or SIGTERM, run `drain` in `loop`, then hand the signal to whatever handled it
    before; a signal arriving once a drain has begun is handed on at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {int(s): signal.getsignal(s) for s in SIGNALS}
    draining: set[asyncio.Task[None]] = set()  # the task, held until it is done

    def hand_on(sig: int, frame: FrameType | None) -> None:
        before = previous[sig]
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    def start(sig: int, frame: FrameType | None) -> None:
        async def drain_then_hand_on() -> None:
            try:
                await drain()
            except Exception:
                log.exception("draining the live connections failed")
            finally:
                hand_on(sig, frame)

        task = loop.create_task(drain_then_hand_on())
        draining.add(task)
        task.add_done_callback(draining.discard)

    begun = False

    def handle(sig: int, frame: FrameType | None) -> None:
        # Between two bytecodes of the main thread, which may be in the middle of the loop's
        # work: nothing is touched here but the flag; the drain starts at the loop's next turn.
        nonlocal begun
        if begun:
            hand_on(sig, frame)
            return
        begun = True
        loop.call_soon_threadsafe(start, sig, frame)

    for handled in SIGNALS:
        signal.signal(handled, handle)
    try:
        yield
    finally:
        for number, before in previous.items():
            if signal.getsignal(number) is handle:
                signal.signal(number, before)
