"""The search index brought up to date by the process that made the change, right after its
commit: the embedded default (SQLite) runs no worker to consume the events.

The worker's consumer (`search.tasks.INDEXER`) and this one are the same consumer, applied at
most once per event through its dedupe marks: when a worker also runs, whichever comes second
does nothing. A failure here loses nothing but freshness: the event is still in the outbox
for a worker, and `skilltree search reindex` rebuilds everything at start.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.platform.db import after_commit
from skilltree.platform.queue.tasks import Job
from skilltree.platform.state import Resources
from skilltree.search.tasks import INDEXER

log = structlog.get_logger(__name__)


class InProcessIndexer:
    """Bound to every unit of work (`Database.on_every_unit_of_work`) when the settings say so."""

    def __init__(self, resources: Resources) -> None:
        self.job = Job(resources=resources, task_id="search.in-process", attempt=1, max_attempts=1)

    def bind(self, session: AsyncSession) -> None:
        emitted = events.emitted_by(session)

        async def index_committed() -> None:
            for event in [event for event in emitted if INDEXER.wants(event)]:
                try:
                    await events.apply_once(self.job, INDEXER, event)
                except Exception:
                    # The change is committed; never fail the request that made it.
                    log.exception("search.in_process_index_failed", event_id=event.id)

        after_commit(session, index_committed)
