"""A live push that fails is logged and dropped: the change it follows is committed already,
and the worker's projection writes the feed line anyway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from structlog.testing import capture_logs

from skilltree.platform.broadcast import LocalBroadcaster
from skilltree.platform.clock import FrozenClock
from skilltree.platform.events import Event
from skilltree.realtime.live import LiveProjector


class UnreachableDatabase:
    @asynccontextmanager
    async def unit_of_work(self, **_: Any) -> AsyncIterator[None]:
        raise ConnectionError("the database went away")
        yield


async def test_a_failed_projection_is_logged_and_never_raised() -> None:
    projector = LiveProjector(UnreachableDatabase(), LocalBroadcaster(), FrozenClock())  # type: ignore[arg-type]
    event = Event(
        id="e1",
        type="member.joined",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        org_id=7,
        data={},
    )

    with capture_logs() as logs:
        await projector.project([event])

    (failure,) = [entry for entry in logs if entry["event"] == "live.projection_failed"]
    assert (failure["event_id"], failure["event_type"]) == ("e1", "member.joined")
