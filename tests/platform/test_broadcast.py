"""The one standing listener that components keeping state between messages use (the principal
cache, feature flags): it hears, resubscribes after an overflow or a failing handler with a
pause that grows, reports every possible gap, and stops when the server drains."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from skilltree.platform.broadcast import ChannelListener, Delivery, LocalBroadcaster


class Recorder:
    def __init__(self, fail_on: Callable[[Delivery], bool] = lambda _: False) -> None:
        self.heard: list[dict[str, object]] = []
        self.gaps = 0
        self._fail_on = fail_on

    def message(self, delivery: Delivery) -> None:
        if self._fail_on(delivery):
            raise ValueError("a handler bug")
        self.heard.append(delivery.message)

    def gap(self) -> None:
        self.gaps += 1


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        # A listener's progress shows only in its state: polled, as another task's work is.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def started(
    broadcaster: LocalBroadcaster, recorder: Recorder, **options: int
) -> ChannelListener:
    listener = ChannelListener(
        broadcaster, "news", on_message=recorder.message, on_gap=recorder.gap, **options
    )
    listener.start()
    await until(lambda: listener.listening)
    return listener


async def test_each_message_reaches_the_handler_in_order() -> None:
    broadcaster, recorder = LocalBroadcaster(), Recorder()
    listener = await started(broadcaster, recorder)

    for n in range(3):
        await broadcaster.publish("news", {"n": n}, keep=False)
    await until(lambda: len(recorder.heard) == 3)

    assert recorder.heard == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert recorder.gaps == 0
    await listener.close()


async def test_an_overflow_is_a_gap_and_the_listener_subscribes_again() -> None:
    broadcaster, recorder = LocalBroadcaster(), Recorder()
    listener = await started(broadcaster, recorder, capacity=2)

    for n in range(5):  # published before the listener gets a turn: the queue overflows
        await broadcaster.publish("news", {"n": n}, keep=False)
    await until(lambda: recorder.gaps == 1 and listener.listening)
    await broadcaster.publish("news", {"n": "after"}, keep=False)
    await until(lambda: {"n": "after"} in recorder.heard)

    await listener.close()


async def test_a_failing_handler_is_a_gap_and_does_not_stop_the_listening() -> None:
    broadcaster = LocalBroadcaster()
    recorder = Recorder(fail_on=lambda delivery: delivery.message.get("bad") is True)
    listener = await started(broadcaster, recorder)

    await broadcaster.publish("news", {"bad": True}, keep=False)
    await until(lambda: recorder.gaps == 1)
    assert not listener.listening  # until it has subscribed again, nothing is heard
    await until(lambda: listener.listening)
    await broadcaster.publish("news", {"n": 1}, keep=False)
    await until(lambda: recorder.heard == [{"n": 1}])

    await listener.close()


async def test_a_handler_that_always_fails_is_retried_with_growing_pauses() -> None:
    broadcaster = LocalBroadcaster()
    recorder = Recorder(fail_on=lambda _: True)
    listener = await started(broadcaster, recorder)

    async def keep_publishing() -> None:
        while True:
            await broadcaster.publish("news", {}, keep=False)
            await asyncio.sleep(0.01)

    publisher = asyncio.create_task(keep_publishing())
    await asyncio.sleep(1.0)
    publisher.cancel()

    # Pauses of 0.05, 0.1, 0.2, 0.4 s... fit five failures in a second, not a hundred.
    assert 2 <= recorder.gaps <= 6
    await listener.close()


async def test_a_reconnection_of_the_broadcaster_is_a_gap() -> None:
    broadcaster, recorder = LocalBroadcaster(), Recorder()
    listener = await started(broadcaster, recorder)

    broadcaster.epoch += 1  # what RedisBroadcaster does when its subscription comes back
    await broadcaster.publish("news", {"n": 1}, keep=False)
    await until(lambda: recorder.heard == [{"n": 1}])

    assert recorder.gaps == 1
    await listener.close()


async def test_draining_the_broadcaster_stops_the_listener() -> None:
    broadcaster, recorder = LocalBroadcaster(), Recorder()
    listener = await started(broadcaster, recorder)

    await broadcaster.drain("server shutting down", grace_seconds=1.0)
    await until(lambda: listener.stopped)

    assert not listener.listening
    assert recorder.gaps == 0  # the server stops: nothing to resubscribe to
    await listener.close()
