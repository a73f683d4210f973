"""Read-your-writes with a read replica: after a client's writing request, its reads go to the
primary for a while (docs/databases.md, "Read replicas").

The marker is a cookie holding the time until which the client reads from the primary: it
travels with the client to whichever instance serves its next request, and costs no lookup. The
window is the replica's `read_your_writes_seconds` (the largest lag the replica is used with,
plus one lag check), so once it has passed the replica holds the write.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "skilltree_primary_until"
# Requests that change nothing, by their method.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def wrote_lately(cookies: Mapping[str, str], now: float | None = None) -> bool:
    """Whether this client wrote recently enough that the replica may not hold it yet."""
    try:
        until = float(cookies.get(COOKIE, ""))
    except ValueError:
        return False
    return until > (time.time() if now is None else now)


class ReadYourWritesMiddleware:
    """Marks every response to a writing request: the client reads the primary for a while."""

    def __init__(self, app: ASGIApp, *, seconds: float, secure: bool) -> None:
        self.app = app
        self.seconds = seconds
        self.attributes = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READING_METHODS:
            await self.app(scope, receive, send)
            return

        async def mark(message: Message) -> None:
            if message["type"] == "http.response.start":
                until = time.time() + self.seconds
                MutableHeaders(scope=message).append(
                    "set-cookie",
                    f"{COOKIE}={until:.3f}; Max-Age={math.ceil(self.seconds)}{self.attributes}",
                )
            await send(message)

        await self.app(scope, receive, mark)
