"""Search's background work: the consumer that keeps the index in step with domain events."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform import events
from skilltree.platform.queue.tasks import Job
from skilltree.search import service


async def _index(session: AsyncSession, job: Job, event: events.Event) -> None:
    await service.apply_event(session, event)


INDEXER = events.Consumer("search.index", service.INDEXED_EVENTS, _index)


def subscribe() -> None:
    """Subscribe the indexer to its events; the worker calls this when it is built."""
    events.CONSUMERS[INDEXER.name] = INDEXER
