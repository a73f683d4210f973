"""From committed domain events to live messages, in the process that made the change.

Bound to every unit of work (`Database.on_every_unit_of_work`): once a unit of work commits,
the events it emitted are projected into the feed (cohorts.service.project, idempotent) and
what the projection wrote is published on the fan-out:

    org:<id>    the organisation's feed stream (GET /v1/orgs/{org}/feed/stream)
    user:<id>   a person's own stream (GET /v1/me/stream)
    progress:<id>  a person's own status changes, as they happen, with a short history to resume
                   from (gRPC Progress.WatchProgress, the GraphQL subscription `progressEvents`)

The same projection runs again in a worker consuming the events (cohorts/tasks.py), so a
process that dies between its commit and this step loses no feed line, only its live push.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.cohorts import service as cohorts
from skilltree.platform import events
from skilltree.platform.broadcast import Broadcaster, user_channel
from skilltree.platform.clock import Clock
from skilltree.platform.db import Database, after_commit
from skilltree.platform.events import Event
from skilltree.progress.service import TOPIC_STATUS_CHANGED
from skilltree.roadmaps import service as roadmaps

log = structlog.get_logger(__name__)


def org_channel(org_id: int) -> str:
    return f"org:{org_id}"


def progress_channel(user_id: int) -> str:
    return f"progress:{user_id}"


def feed_message(line: cohorts.ActivityView) -> dict[str, Any]:
    return {
        "id": line.id,
        "kind": line.kind,
        "actor_id": line.actor_id,
        "data": line.data,
        "occurred_at": line.occurred_at.isoformat(),
    }


class LiveProjector:
    def __init__(self, database: Database, broadcaster: Broadcaster, clock: Clock) -> None:
        self.database = database
        self.broadcaster = broadcaster
        self.clock = clock

    def bind(self, session: AsyncSession) -> None:
        async def project_committed() -> None:
            emitted = events.take_emitted(session)
            if emitted:
                await self.project(emitted)

        after_commit(session, project_committed)

    async def project(self, emitted: list[Event]) -> None:
        for event in emitted:
            try:
                await self._project_one(event, self.clock.now())
            except Exception:
                # The change is committed; its feed line will come from the worker's
                # projection. A live push is never worth failing the request for.
                log.exception("live.projection_failed", event_id=event.id, event_type=event.type)

    async def _project_one(self, event: Event, now: datetime) -> None:
        lines, notices, change = await self._read_projection(event, now)
        if change is not None:
            await self.broadcaster.publish(*change)
        for line in lines:
            await self.broadcaster.publish(org_channel(line.org_id), feed_message(line))
        for user_id, notice in notices:
            await self.broadcaster.publish(user_channel(user_id), notice)

    async def _read_projection(self, event: Event, now: datetime) -> Projection:
        """What the event makes: feed lines, personal notices, the learner's change. Most
        events need no statement (a status change outside any organisation): their unit of
        work opens only if something reaches for it, not for every commit."""
        async with self.database.unit_of_work_at_first_use() as session:
            lines = await cohorts.project(session, event, now)
            notices = await cohorts.personal_notices(session, event)
            change = await _progress_change(session, event)
        return lines, notices, change


Projection = tuple[
    list[cohorts.ActivityView], list[tuple[int, dict[str, Any]]], tuple[str, dict[str, Any]] | None
]


async def _progress_change(
    session: AsyncSession, event: Event
) -> tuple[str, dict[str, Any]] | None:
    """A status change, for its learner's progress channel: the slugs a client knows."""
    if event.type != TOPIC_STATUS_CHANGED:
        return None
    roadmap, topic = event.data.get("roadmap"), event.data.get("topic")
    if roadmap is None or topic is None:
        # An event written before it carried both slugs: look them up.
        labels = await roadmaps.topic_labels(session, [int(event.data["topic_id"])])
        label = labels.get(int(event.data["topic_id"]))
        if label is None:
            return None  # the topic was removed in the meantime: nothing left to show
        roadmap, topic = label.roadmap_slug, label.slug
    message = {
        **event.data,  # the ids (topic, roadmap, progress event) the GraphQL subscription reads
        "roadmap": roadmap,
        "topic": topic,
        "from": event.data.get("from"),
        "to": event.data.get("to"),
        "occurred_at": event.occurred_at.isoformat(),
    }
    return progress_channel(int(event.data["user_id"])), message
