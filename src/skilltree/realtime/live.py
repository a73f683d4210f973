"""From committed domain events to live messages, in the process that made the change.

Bound to every unit of work (`Database.on_every_unit_of_work`): once a unit of work commits,
the events it emitted are projected into the feed (cohorts.service.project, idempotent) and
what the projection wrote is published on the fan-out:

    org:<id>    the organisation's feed stream (GET /v1/orgs/{org}/feed/stream)
    user:<id>   a person's own stream (GET /v1/me/stream)
    progress:<id>  a person's own status changes, as they happen (the GraphQL subscription
                   `progressEvents`); ephemeral: the client reads its progress to catch up

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
from skilltree.progress import service as progress

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
        if event.type == progress.TOPIC_STATUS_CHANGED:
            # The event's own data: no query on the write path for listeners that may not exist.
            change = {**event.data, "occurred_at": event.occurred_at.isoformat()}
            await self.broadcaster.publish(
                progress_channel(int(event.data["user_id"])), change, keep=False
            )
        async with self.database.unit_of_work() as session:
            lines = await cohorts.project(session, event, now)
            notices = await cohorts.personal_notices(session, event)
        for line in lines:
            await self.broadcaster.publish(org_channel(line.org_id), feed_message(line))
        for user_id, notice in notices:
            await self.broadcaster.publish(user_channel(user_id), notice)
