"""Two instances behind one Redis: rooms and streams cross between them, and a restarting
instance hands its clients over to the other (the production shape; CI runs it on Redis)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from skilltree.rooms.client import RoomClient
from tests.support.accounts import Browser, user_id
from tests.support.live import (
    LIVE_DATABASES,
    LiveServer,
    base_environment,
    join,
    live_database,
    new_org,
    person,
    running_servers,
)
from tests.support.progress import WEB, import_roadmap, mark
from tests.support.redis import REDIS_URL, isolated_prefix
from tests.support.rooms import (
    messages,
    open_room,
    presence_change,
    receive_until,
    say,
    ticket_url,
)
from tests.support.sse import events, next_event

pytestmark = pytest.mark.redis

REALTIME = {"presence_ttl_seconds": 3, "credential_check_seconds": 1, "retry_ms": 500}
# How long a stopping instance waits for connections still open before it cuts them off. The
# restart test proves it never waits that long: it closes its sockets and streams itself.
GRACEFUL_SHUTDOWN_SECONDS = 25


@pytest.fixture(scope="module", params=LIVE_DATABASES)
async def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[LiveServer]]:
    """Two instances sharing Redis and one database: SQLite's file, or PostgreSQL as deployed."""
    workdir = tmp_path_factory.mktemp("pair")
    async with isolated_prefix() as prefix:
        env = base_environment(workdir, **REALTIME)
        env |= {
            "SKILLTREE_REDIS_URL": REDIS_URL,
            "SKILLTREE_REDIS_KEY_PREFIX": prefix,
            "SKILLTREE_HTTP_GRACEFUL_SHUTDOWN_SECONDS": str(GRACEFUL_SHUTDOWN_SECONDS),
        }
        async with live_database(request.param, env) as on_database:
            with running_servers(on_database, workdir, count=2) as servers:
                yield servers


@pytest.fixture(scope="module")
async def people(pair: list[LiveServer]) -> AsyncIterator[dict[str, Browser]]:
    """Signed in on the first instance; sessions live in Redis, so they work on both."""
    found = {name.lower(): await person(pair[0], name) for name in ("Ada", "Lee", "Kim")}
    yield found
    for browser in found.values():
        await browser.client.aclose()


@pytest.fixture
async def org(pair: list[LiveServer], people: dict[str, Browser]) -> str:
    slug = await new_org(people["ada"])
    await join(people["ada"], people["lee"], pair[0], slug, "learner")
    await join(people["ada"], people["kim"], pair[0], slug, "learner")
    return slug


def on(server: LiveServer, member: Browser) -> Browser:
    """The same person (same cookies) talking to another instance."""
    client = httpx.AsyncClient(base_url=server.url, cookies=member.client.cookies, timeout=10)
    client.headers["x-test-email"] = member.client.headers["x-test-email"]
    return Browser(client, member.csrf_token)


async def test_messages_cross_instances_in_one_order(
    pair: list[LiveServer], people: dict[str, Browser], org: str
) -> None:
    first, second = pair
    lee_there = on(second, people["lee"])
    on_first = await open_room(first, people["kim"], org)
    on_second = await open_room(second, lee_there, org)
    senders = [await open_room(first, people["ada"], org), await open_room(second, lee_there, org)]
    await receive_until(on_first, "welcome")
    await receive_until(on_second, "welcome")

    async def burst(socket: object, name: str) -> None:
        for number in range(10):
            await say(socket, f"{name}-{number}")  # type: ignore[arg-type]

    await asyncio.gather(*(burst(s, n) for s, n in zip(senders, "AB", strict=True)))
    heard_first = await messages(on_first, 20)
    heard_second = await messages(on_second, 20)

    seqs = [m["seq"] for m in heard_first]
    assert seqs == list(range(seqs[0], seqs[0] + 20))
    assert [m["seq"] for m in heard_second] == seqs
    assert [m["body"] for m in heard_second] == [m["body"] for m in heard_first]
    for socket in (on_first, on_second, *senders):
        await socket.close()
    await lee_there.client.aclose()


async def test_presence_and_typing_cross_instances(
    pair: list[LiveServer], people: dict[str, Browser], org: str
) -> None:
    first, second = pair
    lee_id = await user_id(people["lee"])
    lee_there = on(second, people["lee"])
    kim = await open_room(first, people["kim"], org)
    await receive_until(kim, "welcome")
    lee = await open_room(second, lee_there, org)
    welcome = await receive_until(lee, "welcome")
    joined = await presence_change(kim, lee_id, "online")

    await lee.send(json.dumps({"type": "typing"}))
    typing = await receive_until(kim, "typing")

    assert lee_id in joined["online"]
    assert typing["user_id"] == welcome["user_id"] == lee_id
    for socket in (kim, lee):
        await socket.close()
    await lee_there.client.aclose()


async def test_the_feed_stream_hears_another_instance_and_resumes_on_either(
    pair: list[LiveServer], people: dict[str, Browser], org: str
) -> None:
    second = pair[1]
    await import_roadmap(people["ada"], {**WEB, "slug": f"web-{org}"}, visibility="public")
    lee_there = on(second, people["lee"])
    path = f"/v1/orgs/{org}/feed/stream"
    async with people["ada"].client.stream("GET", path, timeout=20) as response:
        stream = events(response)
        await next_event(stream)
        await mark(lee_there, "etags", "done", roadmap=f"web-{org}")
        seen = await next_event(stream)
    await mark(lee_there, "status-codes", "done", roadmap=f"web-{org}")

    ada_there = on(second, people["ada"])
    headers = {"last-event-id": seen.id or ""}
    async with ada_there.client.stream("GET", path, headers=headers, timeout=20) as response:
        stream = events(response)
        await next_event(stream)
        missed = await next_event(stream)

    assert seen.json["data"]["topic"] == "etags"
    assert missed.json["data"]["topic"] == "status-codes"
    await lee_there.client.aclose()
    await ada_there.client.aclose()


# Last in this module: it stops the first instance.
async def test_a_restart_closes_with_1012_and_the_client_resumes_on_another_instance(
    pair: list[LiveServer], people: dict[str, Browser], org: str
) -> None:
    first, second = pair
    kim_there = on(second, people["kim"])
    lee_there = on(second, people["lee"])

    async def ticket() -> str:
        """Like a load balancer: the first instance while it answers, then the other."""
        if first.process.poll() is None:
            try:
                return await ticket_url(first, people["kim"], org)
            except (httpx.TransportError, AssertionError):
                pass
        return await ticket_url(second, kim_there, org)

    client, stop = RoomClient(ticket, max_backoff_seconds=0.5), asyncio.Event()
    runner = asyncio.create_task(client.run(stop))
    lee = await open_room(second, lee_there, org)
    await receive_until(lee, "welcome")
    await client.connected.wait()
    await say(lee, f"before {uuid.uuid4().hex[:4]}")
    before = await next_message(client)
    feed = people["ada"].client.stream("GET", f"/v1/orgs/{org}/feed/stream", timeout=20)
    async with feed as response:
        stream = events(response)
        await next_event(stream)
        stopping = asyncio.create_task(asyncio.to_thread(first.stop))
        farewell = await next_event(stream, seconds=15)
        took = await stopping
    for text in ("while", "away"):
        await say(lee, text)
    resumed = [await next_message(client), await next_message(client)]
    stop.set()
    await runner

    assert farewell.event == "shutdown"
    # Left to uvicorn, the open feed stream would hold the stop until the graceful-shutdown
    # timeout (LiveServer.stop kills only later); the server ends its streams and sockets
    # itself, within a second quietly. Its drain window is off (tests/support/live.py).
    assert took < GRACEFUL_SHUTDOWN_SECONDS
    assert (1012, "server shutting down") in client.closes
    assert client.connections == 2
    assert [m["body"] for m in resumed] == ["while", "away"]
    assert [m["seq"] for m in resumed] == [before["seq"] + 1, before["seq"] + 2]
    await lee.close()
    await kim_there.client.aclose()
    await lee_there.client.aclose()


async def next_message(client: RoomClient) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            event = await client.events.get()
            if event["type"] == "message":
                return event
