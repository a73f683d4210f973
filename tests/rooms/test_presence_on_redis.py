"""Room presence on Redis, as deployed: a burst of heartbeats and a Redis outage cost the
members nothing but presence, and never their sockets (real clients, a real server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.support.accounts import Browser, user_id
from tests.support.live import (
    LiveServer,
    base_environment,
    join,
    new_org,
    person,
    running_servers,
)
from tests.support.private_redis import private_redis
from tests.support.redis import REDIS_URL, isolated_prefix
from tests.support.rooms import messages, open_room, presence_change, receive_until, say

pytestmark = pytest.mark.redis

REALTIME = {"presence_ttl_seconds": 30, "credential_check_seconds": 30}
# Few enough that a room's heartbeats, all at once, ask for more connections than there are.
POOL = 4
SOCKETS = 12


async def members(server: LiveServer) -> tuple[dict[str, Browser], str]:
    found = {name.lower(): await person(server, name) for name in ("Ada", "Lee", "Kim")}
    org = await new_org(found["ada"])
    await join(found["ada"], found["lee"], server, org, "learner")
    await join(found["ada"], found["kim"], server, org, "learner")
    return found, org


@pytest.fixture
async def small_pool(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with isolated_prefix() as prefix:
        env = base_environment(tmp_path, **REALTIME)
        env |= {
            "SKILLTREE_REDIS_URL": f"{REDIS_URL}?max_connections={POOL}",
            "SKILLTREE_REDIS_KEY_PREFIX": prefix,
        }
        with running_servers(env, tmp_path) as servers:
            yield servers[0]


async def test_a_burst_of_heartbeats_larger_than_the_redis_pool_closes_no_socket(
    small_pool: LiveServer,
) -> None:
    people, org = await members(small_pool)
    sockets = [
        await open_room(small_pool, people["kim" if n % 2 else "lee"], org) for n in range(SOCKETS)
    ]
    for socket in sockets:
        await receive_until(socket, "welcome")

    # Every member's client beats at once (a room that filled up together beats together).
    for _ in range(3):
        await asyncio.gather(*(s.send('{"type":"heartbeat"}') for s in sockets))
    await say(sockets[0], "still here?")
    heard = [await messages(socket, 1) for socket in sockets]

    assert [frames[0]["body"] for frames in heard] == ["still here?"] * SOCKETS
    assert [socket.close_code for socket in sockets] == [None] * SOCKETS
    for socket in sockets:
        await socket.close()
    for browser in people.values():
        await browser.client.aclose()


async def test_a_redis_outage_keeps_the_room_open_and_it_recovers_when_redis_is_back(
    tmp_path: Path,
) -> None:
    with private_redis() as redis:
        env = base_environment(tmp_path, **REALTIME)
        env |= {"SKILLTREE_REDIS_URL": redis.url}
        with running_servers(env, tmp_path) as (server,):
            people, org = await members(server)
            lee = await open_room(server, people["lee"], org)
            kim = await open_room(server, people["kim"], org)
            await receive_until(lee, "welcome")
            await receive_until(kim, "welcome")
            kim_id = await user_id(people["kim"])  # sessions live in Redis: asked before

            redis.stop()
            await lee.send('{"type":"heartbeat"}')
            await lee.send('{"type":"typing"}')
            await say(lee, "during the outage")
            refused = await receive_until(lee, "error")
            redis.start()  # empty: a Redis without persistence comes back with nothing
            heard = await heard_after_recovery(lee, kim)
            # Presence was lost with Redis' data: the next heartbeat puts Kim back, and Lee
            # hears of it.
            await kim.send('{"type":"heartbeat"}')
            back = await presence_change(lee, kim_id, "online", 20)

            assert refused["code"] == "not-delivered-live"
            assert heard[0]["body"] == "during the outage"
            assert [m["seq"] for m in heard] == list(
                range(heard[0]["seq"], heard[0]["seq"] + len(heard))
            )
            assert back["type"] == "presence"
            assert (lee.close_code, kim.close_code) == (None, None)
            # Logged once for the outage, not once per heartbeat or per member.
            assert server.log.read_text().count("rooms.presence_unavailable") == 1
            await lee.close()
            await kim.close()
            for browser in people.values():
                await browser.client.aclose()


async def heard_after_recovery(
    sender: ClientConnection, listener: ClientConnection
) -> list[dict[str, Any]]:
    """Say something every second until the listener hears it live (the fan-out reconnects
    in the background); everything the listener heard, the message from the outage first."""
    heard: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while True:
            marker = f"after {uuid.uuid4().hex[:6]}"
            await say(sender, marker)
            try:
                async with asyncio.timeout(1.5):
                    while not heard or heard[-1]["body"] != marker:
                        heard += await messages(listener, 1)
                return heard
            except TimeoutError:
                continue
