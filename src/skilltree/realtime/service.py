"""One server-sent event stream: resume from history, then live messages, until it must end.

A stream
1. subscribes first, then reads the history after `Last-Event-ID`, so nothing published in
   between is lost (a message in both is sent once: ids only grow);
2. tells the client how long to wait before reconnecting (`retry:`);
3. sends a comment line whenever it has been quiet for `heartbeat_seconds`, so proxies and
   load balancers keep the connection;
4. ends, saying why in a `close` event, when its maximum lifetime is reached (the client
   reconnects with `Last-Event-ID` and re-authenticates), when the sign-in behind it was
   revoked (checked every `credential_check_seconds`), when the client reads too slowly, or
   when the server shuts down (`shutdown`).
A `reset` event means the history no longer reaches back to the client's last id: reload the
page of the feed (GET), then carry on with the live events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from skilltree.platform.broadcast import Broadcaster, Delivery, id_order
from skilltree.platform.config import RealtimeSettings

StillAllowed = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Frame:
    """One SSE event (or, with only `comment`, a heartbeat line)."""

    event: str | None = None
    data: dict[str, Any] | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None
    # `data` already encoded as JSON (a fan-out message is encoded once per process).
    text: str | None = None


async def stream(
    broadcaster: Broadcaster,
    channel: str,
    event_name: str,
    last_event_id: str | None,
    settings: RealtimeSettings,
    still_allowed: StillAllowed,
) -> AsyncGenerator[Frame]:
    loop = asyncio.get_running_loop()
    async with broadcaster.subscribe([channel], settings.send_queue) as subscription:
        yield Frame(comment="connected", retry=settings.retry_ms)
        last: tuple[int, int] = (0, 0)
        if last_event_id:
            missed = await broadcaster.history(channel, last_event_id, settings.history_size)
            if missed is None:
                yield Frame(event="reset", data={"reason": "history does not reach your last id"})
            else:
                for kept in missed:
                    last = id_order(kept.id) or last
                    yield _frame(event_name, kept)
                last = max(last, id_order(last_event_id) or last)
        deadline = loop.time() + settings.stream_max_seconds
        next_check = loop.time() + settings.credential_check_seconds
        while True:
            now = loop.time()
            wait = min(settings.heartbeat_seconds, deadline - now, next_check - now)
            delivery = await subscription.next(max(wait, 0.0))
            if subscription.ended is not None:
                yield Frame(event="shutdown", data={"reason": subscription.ended})
                return
            if subscription.overflowed:
                yield Frame(event="close", data={"reason": "too slow: resume with Last-Event-ID"})
                return
            if delivery is not None:
                order = id_order(delivery.id)
                if order is None or order > last:
                    last = order or last
                    yield _frame(event_name, delivery)
                continue
            now = loop.time()
            if now >= deadline:
                yield Frame(event="close", data={"reason": "maximum stream lifetime: reconnect"})
                return
            if now >= next_check:
                if not await still_allowed():
                    yield Frame(event="close", data={"reason": "signed out"})
                    return
                next_check = now + settings.credential_check_seconds
            yield Frame(comment="heartbeat")


def _frame(event_name: str, delivery: Delivery) -> Frame:
    return Frame(event=event_name, data=delivery.message, id=delivery.id, text=delivery.text)
