"""The HTTP response of a live stream: `text/event-stream`, written by the request's own task.

FastAPI's `EventSourceResponse` runs every stream as a producer task, a keep-alive task and two
memory channels in a task group, inside Starlette's streaming response with a task of its own
listening for the disconnect: four tasks and their cancel scopes per idle stream, most of what a
held stream cost (docs/performance.md). Our streams already send their own heartbeats
(realtime/service.py), so this response needs only two: the request's task writes the frames,
and one small task waits for the client to go away and stops it (decision 0050).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from skilltree.realtime.service import Frame


def encode(frame: Frame) -> bytes:
    """One event in the wire format of the HTML standard (`data` is JSON on one line)."""
    lines = []
    if frame.comment is not None:
        lines.append(f": {frame.comment}")
    if frame.event is not None:
        lines.append(f"event: {frame.event}")
    if frame.id is not None:
        lines.append(f"id: {frame.id}")
    if frame.retry is not None:
        lines.append(f"retry: {frame.retry}")
    if frame.text is not None:
        lines.append(f"data: {frame.text}")
    elif frame.data is not None:
        lines.append(f"data: {orjson.dumps(frame.data).decode()}")
    return ("\n".join(lines) + "\n\n").encode()


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, frames: AsyncGenerator[Frame]) -> None:
        # No caching, and no buffering by a proxy in front (nginx honours X-Accel-Buffering).
        # As Starlette's StreamingResponse sets itself up: no body, so no Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no"})
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        writer = asyncio.current_task()
        assert writer is not None
        listener = asyncio.get_running_loop().create_task(_stop_on_disconnect(receive, writer))
        try:
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": encode(frame), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            gone = listener.done() and not listener.cancelled()
            if not gone or writer.uncancel() > 0:
                raise  # cancelled by the server (shutting down), not by the client leaving
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.frames.aclose()


async def _stop_on_disconnect(receive: Receive, writer: asyncio.Task[object]) -> None:
    """Read the request until the client disconnects (an idle stream's only sign of it),
    then stop the writer, which may be waiting for the next event for minutes."""
    while (await receive())["type"] != "http.disconnect":
        pass
    writer.cancel()
