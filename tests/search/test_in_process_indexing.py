"""On the embedded default (SQLite, no worker) a write reaches the index in the process that
made it, right after its commit."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.config import DatabaseSettings, SearchSettings, Settings
from tests.search.conftest import (
    PUBLIC_ROADMAP,
    People,
    import_roadmap,
    search,
    topics_of,
    write_note,
)


@pytest.fixture
def engine(sqlite_engine: AsyncEngine) -> AsyncEngine:
    return sqlite_engine


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # "auto", the default outside the tests: on, because the database is SQLite.
    return settings.model_copy(update={"search": SearchSettings()})


async def test_a_note_written_through_the_api_is_found_right_after(
    people: People, client: httpx.AsyncClient
) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, PUBLIC_ROADMAP)

    await write_note(ada, "web", "retries", "jitter spreads the retries of many clients")

    found = await search(ada.client, "jitter", kind="note")
    assert [hit["topic"] for hit in found["items"]] == ["retries"]
    assert topics_of(await search(client, "broker")) == ["queues"]

    await write_note(ada, "web", "retries", "")
    assert (await search(ada.client, "jitter", kind="note"))["items"] == []


def test_auto_indexes_in_process_on_sqlite_only() -> None:
    sqlite = DatabaseSettings(url="sqlite+aiosqlite:///var/skilltree.db")
    postgresql = DatabaseSettings(url="postgresql+asyncpg://127.0.0.1/skilltree")

    assert SearchSettings().indexes_in_process(sqlite)
    assert not SearchSettings().indexes_in_process(postgresql)
    assert SearchSettings(index_in_process="on").indexes_in_process(postgresql)
    assert not SearchSettings(index_in_process="off").indexes_in_process(sqlite)
