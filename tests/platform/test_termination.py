"""The live connections are drained before the server hears it must stop (platform/shutdown.py):
the signal reaches the handler installed before only once the drain is done, whatever it did.
The served behaviour: tests/rooms/test_across_instances.py (a restart closes sockets with 1012
and its reason) and tests/realtime/test_streams.py (streams end with a `shutdown` event)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from skilltree.platform.shutdown import on_termination


@pytest.fixture
def handed_on() -> Iterator[list[int]]:
    """The signals that reach the handler SIGTERM had before (the server's, in production)."""
    assert threading.current_thread() is threading.main_thread()  # where signals are handled
    reached: list[int] = []

    def server_handler(sig: int, _frame: FrameType | None) -> None:
        reached.append(sig)

    before = signal.signal(signal.SIGTERM, server_handler)
    try:
        yield reached
    finally:
        signal.signal(signal.SIGTERM, before)


async def turns(count: int = 20) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_the_server_hears_the_signal_only_once_the_drain_is_done(
    handed_on: list[int],
) -> None:
    release, drained = asyncio.Event(), asyncio.Event()

    async def drain() -> None:
        await release.wait()
        drained.set()

    with on_termination(drain, asyncio.get_running_loop()):
        signal.raise_signal(signal.SIGTERM)
        await turns()
        draining = list(handed_on)
        release.set()
        await turns()
        after_drain = list(handed_on)
        signal.raise_signal(signal.SIGTERM)  # a second signal: handed on at once
        after_second = list(handed_on)

    assert draining == []
    assert drained.is_set()
    assert after_drain == [signal.SIGTERM]
    assert after_second == [signal.SIGTERM, signal.SIGTERM]


async def test_a_drain_that_fails_still_hands_the_signal_on(handed_on: list[int]) -> None:
    async def drain() -> None:
        raise RuntimeError("a subscriber would not end")

    with on_termination(drain, asyncio.get_running_loop()):
        signal.raise_signal(signal.SIGTERM)
        await turns()

    assert handed_on == [signal.SIGTERM]


async def test_the_handlers_before_are_back_once_the_app_has_stopped(
    handed_on: list[int],
) -> None:
    async def drain() -> None:
        return None

    with on_termination(drain, asyncio.get_running_loop()):
        pass
    signal.raise_signal(signal.SIGTERM)

    assert handed_on == [signal.SIGTERM]
