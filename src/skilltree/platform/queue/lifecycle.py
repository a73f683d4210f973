"""Long-running loops (relay, scheduler, worker) and how they stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set: shutdown never waits out a poll interval."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (the way orchestrators stop a process) and SIGINT (Ctrl-C) set `stop`."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
