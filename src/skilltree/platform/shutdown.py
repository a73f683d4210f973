"""Hearing that the server was told to stop, before it waits for open connections.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections and then waits, up to its graceful
timeout, for every open one to finish. A stream or a socket that is open for hours would make
it wait the whole timeout and then be cut off without a word. So the lifespan chains a handler
in front of the server's own: it starts draining the live connections (each closes, saying
why: an SSE `shutdown` event, a WebSocket close 1012 with a reason) and then lets the server's
handler carry on as before.

Signal handlers belong to the main thread; elsewhere (an app run inside a test) this does
nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def on_termination(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` (in the main thread, between two bytecodes: keep it short) when the
    process receives SIGINT or SIGTERM, then whatever handled the signal before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {int(s): signal.getsignal(s) for s in SIGNALS}

    def handle(sig: int, frame: FrameType | None) -> None:
        callback()
        before = previous[sig]
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for handled in SIGNALS:
        signal.signal(handled, handle)
    try:
        yield
    finally:
        for number, before in previous.items():
            if signal.getsignal(number) is handle:
                signal.signal(number, before)
