"""Rebuilding the index from the owning domains, and the worker's subscription."""

from __future__ import annotations

import httpx
from sqlalchemy import delete

from skilltree.platform import events
from skilltree.platform.db import Database
from skilltree.search import service
from skilltree.search.models import SearchDocument
from skilltree.search.tasks import INDEXER, subscribe
from tests.search.conftest import add_resource, search, topics_of, write_note
from tests.support.accounts import Browser


async def test_reindex_rebuilds_a_lost_index_with_progress_reported(
    ada: Browser, database: Database, client: httpx.AsyncClient
) -> None:
    await write_note(ada, "web", "retries", "jitter everywhere")
    await add_resource(ada, "web", "retries", "Jitter paper", "https://example.org/jitter")
    async with database.unit_of_work() as session:
        await session.execute(delete(SearchDocument))
    assert topics_of(await search(client, "caching")) == []

    reported: list[int] = []
    async with database.unit_of_work() as session:
        total = await service.reindex(session, reported.append)

    assert total == 7 + 1 + 1  # seven topics, one note, one resource
    assert sum(reported) == total
    assert topics_of(await search(client, "caching")) == ["http-caching"]
    mine = await search(ada.client, "jitter", kind=["note", "resource"])
    assert sorted(hit["kind"] for hit in mine["items"]) == ["note", "resource"]


async def test_reindexing_twice_changes_nothing(ada: Browser, database: Database) -> None:
    async with database.unit_of_work() as session:
        first = await service.reindex(session, lambda _: None)
        second = await service.reindex(session, lambda _: None)
        assert await service.document_count(session) == first == second == 7


def test_the_worker_subscribes_the_indexer_to_note_resource_and_roadmap_events() -> None:
    subscribe()

    assert events.CONSUMERS["search.index"] is INDEXER
    assert INDEXER.event_types == {"roadmap.changed", "note.changed", "resource.changed"}
