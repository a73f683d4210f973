"""Opening study rooms on a live server, as a client would: ticket first, then the socket."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.support.accounts import Browser
from tests.support.live import LiveServer


async def ticket_url(server: LiveServer, member: Browser, org: str, room: str = "lobby") -> str:
    response = await member.client.post(
        f"/v1/orgs/{org}/rooms/{room}/tickets", headers=member.write_headers
    )
    assert response.status_code == 201, response.text
    return server.url.replace("http://", "ws://") + str(response.json()["url"])


async def open_room(
    server: LiveServer,
    member: Browser,
    org: str,
    *,
    room: str = "lobby",
    last_seq: int | None = None,
    origin: str | None = None,
    max_queue: int | None = None,
    receive_buffer: int | None = None,
    compression: str | None = "deflate",
    ping_interval: float | None = 20,
) -> ClientConnection:
    """`max_queue` bounds the frames the client holds unread before it stops reading the
    socket. Unbounded by default: a test socket that was sent more than it read (a sender
    hears its own messages) could otherwise not read the server's close frame, and closing it
    would wait out the close timeout (10 s). `receive_buffer` fixes the kernel's receive buffer
    (no autotuning): a client that stops reading then stops the server's writes after a few
    kilobytes, not after megabytes."""
    url = await ticket_url(server, member, org, room)
    if last_seq is not None:
        url += f"&last_seq={last_seq}"
    headers = {"Origin": origin} if origin else None
    sock = None
    if receive_buffer is not None:
        host, _, port = server.url.removeprefix("http://").partition(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await connect(
        url,
        additional_headers=headers,
        max_queue=max_queue,
        sock=sock,
        compression=compression,
        ping_interval=ping_interval,
    )


async def receive(socket: ClientConnection, seconds: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        data: dict[str, Any] = json.loads(await socket.recv())
        return data


async def receive_until(
    socket: ClientConnection, kind: str, seconds: float = 10.0, **fields: Any
) -> dict[str, Any]:
    """The next frame of this type (and these field values), skipping others."""
    async with asyncio.timeout(seconds):
        while True:
            frame = await receive(socket, seconds)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame


async def say(socket: ClientConnection, body: str, **extra: Any) -> None:
    await socket.send(json.dumps({"type": "message", "body": body, **extra}))


async def messages(
    socket: ClientConnection, count: int, seconds: float = 20.0
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while len(found) < count:
            frame = await receive(socket, seconds)
            if frame["type"] == "message":
                found.append(frame)
    return found


async def drain(socket: ClientConnection, seconds: float = 30.0) -> None:
    """Read until the server closes the socket (ConnectionClosed), at most `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            await socket.recv()


async def presence_change(
    socket: ClientConnection, user_id: int, state: str, seconds: float = 10.0
) -> dict[str, Any]:
    """The next `presence` frame that lists this user as `online` or `offline` (frames are
    batched: one may list several people, docs/realtime.md)."""
    async with asyncio.timeout(seconds):
        while True:
            frame = await receive(socket, seconds)
            if frame["type"] == "presence" and user_id in frame[state]:
                return frame
