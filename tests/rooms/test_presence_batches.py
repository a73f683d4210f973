"""Joins and leaves reach a room in batches: a thousand arrivals are one frame, not a
thousand (decision 0050)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from skilltree.platform.broadcast import LocalBroadcaster
from skilltree.rooms.presence import OFFLINE, ONLINE, LocalPresence, PresenceAnnouncer

INTERVAL = 0.05


async def frames_after(
    broadcaster: LocalBroadcaster, channel: str, act: Callable[[], None]
) -> list[dict[str, Any]]:
    async with broadcaster.subscribe([channel]) as listener:
        act()
        await asyncio.sleep(INTERVAL * 4)
        found = []
        while (delivery := await listener.next(wait_seconds=0)) is not None:
            found.append(delivery.message)
        return found


async def test_a_thousand_arrivals_are_announced_in_one_frame() -> None:
    broadcaster = LocalBroadcaster()
    announcer = PresenceAnnouncer(broadcaster, INTERVAL)

    def arrive() -> None:
        for user_id in range(1, 1001):
            announcer.note("room:1", user_id, ONLINE)

    frames = await frames_after(broadcaster, "room:1", arrive)

    assert frames == [{"type": "presence", "online": list(range(1, 1001)), "offline": []}]
    await announcer.close()


async def test_the_latest_state_within_an_interval_is_the_one_announced() -> None:
    broadcaster = LocalBroadcaster()
    announcer = PresenceAnnouncer(broadcaster, INTERVAL)

    def come_and_go() -> None:
        announcer.note("room:1", 7, ONLINE)
        announcer.note("room:1", 8, ONLINE)
        announcer.note("room:1", 7, OFFLINE)
        announcer.note("room:2", 9, ONLINE)  # another room: its own frame, not this one's

    frames = await frames_after(broadcaster, "room:1", come_and_go)

    assert frames == [{"type": "presence", "online": [8], "offline": [7]}]
    await announcer.close()


async def test_a_change_after_a_frame_went_out_starts_the_next_interval() -> None:
    broadcaster = LocalBroadcaster()
    announcer = PresenceAnnouncer(broadcaster, INTERVAL)
    async with broadcaster.subscribe(["room:1"]) as listener:
        announcer.note("room:1", 1, ONLINE)
        first = await listener.next(wait_seconds=2)
        announcer.note("room:1", 1, OFFLINE)
        second = await listener.next(wait_seconds=2)

    assert first is not None
    assert second is not None
    assert (first.message["online"], second.message["offline"]) == ([1], [1])
    await announcer.close()


async def test_of_a_rooms_connections_one_sweeps_per_interval() -> None:
    """A room of n sockets used to sweep its n entries once per socket: n² every interval."""
    presence = LocalPresence()
    for connection in range(1000):
        await presence.enter(1, connection, f"c{connection}", ttl=0.01)
    await asyncio.sleep(0.02)

    claims = [presence.sweep_due(1, every=INTERVAL) for _ in range(1000)]
    gone = await presence.sweep(1)
    other_room = presence.sweep_due(2, every=INTERVAL)
    await asyncio.sleep(INTERVAL)

    assert claims.count(True) == 1
    assert gone == list(range(1000))
    assert other_room
    assert presence.sweep_due(1, every=INTERVAL)
