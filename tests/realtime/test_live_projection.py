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
from skilltree.platform.db import Database
from skilltree.platform.events import Event
from skilltree.progress.service import TOPIC_STATUS_CHANGED
from skilltree.realtime.live import LiveProjector, progress_channel


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


def status_change(to: str, **slugs: str) -> Event:
    return Event(
        id=f"change-{to}",
        type=TOPIC_STATUS_CHANGED,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        org_id=None,
        data={"user_id": 1, "roadmap_id": 2, "topic_id": 3, "from": None, "to": to, **slugs},
    )


async def pushed_with_units_of_work(database: Database, event: Event) -> tuple[list[Any], int]:
    """What the learner's progress channel receives for `event`, and how many units of work
    the projection opened."""
    fanout = LocalBroadcaster()
    opened: list[object] = []
    database.on_every_unit_of_work(opened.append)
    try:
        async with fanout.subscribe([progress_channel(1)]) as subscription:
            await LiveProjector(database, fanout, FrozenClock()).project([event])
            delivery = await subscription.next(wait_seconds=0.1)
    finally:
        database.remove_unit_of_work_hook(opened.append)
    received = [] if delivery is None else [delivery.message]
    return [(m["roadmap"], m["topic"], m["to"]) for m in received], len(opened)


async def test_a_status_change_outside_any_organisation_is_pushed_without_a_unit_of_work(
    database: Database,
) -> None:
    # Nothing to read: no feed line (no organisation), no notice, and the slugs are carried
    # by the event. (On SQLite a writer waits for the write lock before it begins, so its
    # unit of work cannot open at first use.)
    event = status_change("in_progress", roadmap="web", topic="etags")

    pushed, units_of_work = await pushed_with_units_of_work(database, event)

    assert pushed == [("web", "etags", "in_progress")]
    assert units_of_work == (
        0 if database.opens_at_first_use(writes=True, from_replica=False) else 1
    )


async def test_an_event_without_its_slugs_still_reads_them(database: Database) -> None:
    event = status_change("in_progress")  # written before events carried the slugs

    pushed, units_of_work = await pushed_with_units_of_work(database, event)

    assert pushed == []  # topic 3 is not in this database: nothing left to show
    assert units_of_work == 1
