"""A reader of text/event-stream, as the HTML standard parses it (what EventSource does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class ServerEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


async def events(response: httpx.Response) -> AsyncIterator[ServerEvent]:
    """Each dispatched event; a block of comment lines alone yields an event named
    `comment` (heartbeats)."""
    current = ServerEvent()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or current.id is not None or current.retry is not None:
                current.data = "\n".join(data)
                yield current
            elif current.comments:
                yield ServerEvent(event="comment", comments=current.comments)
            current, data = ServerEvent(), []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comments.append(value)
        elif name == "event":
            current.event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            current.id = value
        elif name == "retry" and value.isdigit():
            current.retry = int(value)


async def next_event(
    stream: AsyncIterator[ServerEvent], *, skip_comments: bool = True, seconds: float = 10.0
) -> ServerEvent:
    async with asyncio.timeout(seconds):
        async for event in stream:
            if skip_comments and event.event == "comment":
                continue
            return event
    raise AssertionError("the stream ended")
