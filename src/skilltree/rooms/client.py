"""The reference client of study rooms: connects, keeps its presence alive, and when the
connection drops — a server restarting (1012), going away (1001), a network failure — it
waits (exponential back-off with full jitter), asks for a new ticket and reconnects with the
last sequence number it saw, so it receives exactly what it missed, in order.

    async def ticket() -> str:      # the socket URL, ticket included (POST …/tickets)
        ...
    client = RoomClient(ticket)
    async with asyncio.TaskGroup() as group:
        group.create_task(client.run(stop))
        await client.send({"type": "message", "body": "hello"})

Used by the tests and the benchmark; docs/realtime.md shows the same loop in browser JS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

TicketSource = Callable[[], Awaitable[str]]
# Closes after which reconnecting cannot help.
FINAL_CLOSE_CODES = frozenset({1008, 4401, 4403, 4029})


class RoomClient:
    def __init__(
        self,
        ticket_url: TicketSource,
        *,
        origin: str | None = None,
        max_backoff_seconds: float = 5.0,
        max_queue: int | None = 16,
    ) -> None:
        self.ticket_url = ticket_url
        self.origin = origin
        self.max_backoff = max_backoff_seconds
        self.max_queue = max_queue
        self.last_seq: int | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closes: list[tuple[int, str]] = []
        self.connections = 0
        self.connected = asyncio.Event()
        self._socket: ClientConnection | None = None
        self._heartbeat_seconds = 10.0

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connected.wait()
        assert self._socket is not None
        await self._socket.send(json.dumps(frame))

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._session(stop)
                attempt = 0
            except InvalidStatus:
                attempt += 1  # a refused handshake (ticket used, origin): get a new ticket
            except (OSError, WebSocketException, TimeoutError):
                attempt += 1
            if self.closes and self.closes[-1][0] in FINAL_CLOSE_CODES:
                return
            if stop.is_set():
                return
            backoff = random.uniform(0, min(self.max_backoff, 0.1 * 2**attempt))  # noqa: S311
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)

    async def _session(self, stop: asyncio.Event) -> None:
        url = await self.ticket_url()
        if self.last_seq is not None:
            url = f"{url}&last_seq={self.last_seq}"
        headers = {"Origin": self.origin} if self.origin else None
        async with connect(url, additional_headers=headers, max_queue=self.max_queue) as socket:
            self._socket = socket
            self.connections += 1
            self.connected.set()
            beats = asyncio.create_task(self._heartbeats(socket))
            stopper = asyncio.create_task(stop.wait())
            try:
                while True:
                    receiving = asyncio.create_task(socket.recv())
                    done, _ = await asyncio.wait(
                        {receiving, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stopper in done:
                        receiving.cancel()
                        await socket.close(1000, "client stopping")
                        return
                    self._receive(json.loads(receiving.result()))
            except ConnectionClosed as closed:
                received = closed.rcvd
                self.closes.append(
                    (received.code, received.reason) if received is not None else (1006, "")
                )
            finally:
                self.connected.clear()
                self._socket = None
                beats.cancel()
                stopper.cancel()

    def _receive(self, event: dict[str, Any]) -> None:
        if event.get("type") == "welcome":
            self._heartbeat_seconds = float(event.get("heartbeat_seconds", 10.0))
            if self.last_seq is None:
                self.last_seq = int(event["last_seq"])
        elif event.get("type") == "reset":
            self.last_seq = int(event["last_seq"])
        seq = event.get("seq")
        if event.get("type") in ("message", "deletion") and isinstance(seq, int):
            self.last_seq = max(self.last_seq or 0, seq)
        self.events.put_nowait(event)

    async def _heartbeats(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self._heartbeat_seconds)
                await socket.send(json.dumps({"type": "heartbeat"}))
