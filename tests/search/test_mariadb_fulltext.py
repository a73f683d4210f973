"""Search on MariaDB/MySQL with real commits: InnoDB FULLTEXT indexes see committed rows only,
so these tests commit into a throwaway database of their own instead of rolling back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from skilltree.roadmaps.models import Roadmap, Topic
from skilltree.search import repository
from skilltree.search.query import MARK_END, MARK_START, Mode, parse
from tests.support.databases import temporary_mariadb_database

pytestmark = pytest.mark.mariadb

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def committed_engine() -> AsyncIterator[AsyncEngine]:
    async with temporary_mariadb_database() as url:
        engine = create_engine(DatabaseSettings(url=url))
        await migrations.upgrade(engine)
        await _fill(engine)
        yield engine
        await engine.dispose()


async def _fill(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        roadmap_ids = {}
        for slug, visibility in (("web", "public"), ("secret", "private")):
            result = await session.execute(
                insert(Roadmap).values(
                    slug=slug,
                    title=slug.title(),
                    description="",
                    source="import",
                    version=1,
                    visibility=visibility,
                    content_hash="0" * 64,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            roadmap_ids[slug] = result.inserted_primary_key[0]
        documents = []
        for slug, topic_slug, title, body in (
            ("web", "http-caching", "HTTP caching", "Cache-Control headers and ETags save work."),
            ("web", "retries", "Retries", "Idempotency makes retrying a request safe."),
            ("secret", "caching-secrets", "Caching secrets", "Nobody else may find this."),
        ):
            topic_id = (
                await session.execute(
                    insert(Topic).values(
                        roadmap_id=roadmap_ids[slug],
                        slug=topic_slug,
                        title=title,
                        position=0,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
            ).inserted_primary_key[0]
            documents.append(
                repository.DocumentText(
                    key=f"topic:{topic_id}",
                    kind="topic",
                    roadmap_id=roadmap_ids[slug],
                    topic_id=topic_id,
                    user_id=None,
                    title=title,
                    body=body,
                    updated_at=NOW,
                )
            )
        await repository.upsert(session, documents)


def _scope(visible: list[str]) -> repository.Scope:
    return repository.Scope(
        visible_roadmaps=select(Roadmap.id).where(Roadmap.slug.in_(visible)),
        user_id=None,
        kinds=frozenset({"topic"}),
    )


async def _titles(engine: AsyncEngine, text: str, visible: list[str], mode: Mode) -> list[str]:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        hits = await repository.index_for(session).page(
            session, parse(text, mode), _scope(visible), None, 10, fuzzy=False
        )
    return [hit.title for hit in hits]


async def test_a_committed_topic_is_found_by_its_words(committed_engine: AsyncEngine) -> None:
    assert await _titles(committed_engine, "etags", ["web"], Mode.WORDS) == ["HTTP caching"]


async def test_prefix_mode_finds_words_as_they_are_typed(committed_engine: AsyncEngine) -> None:
    assert await _titles(committed_engine, "idempot", ["web"], Mode.PREFIX) == ["Retries"]


async def test_roadmaps_the_caller_may_not_see_are_never_matched(
    committed_engine: AsyncEngine,
) -> None:
    assert await _titles(committed_engine, "caching", ["web"], Mode.WORDS) == ["HTTP caching"]
    found = await _titles(committed_engine, "caching", ["web", "secret"], Mode.WORDS)
    assert sorted(found) == ["Caching secrets", "HTTP caching"]


async def test_excluded_words_and_highlights(committed_engine: AsyncEngine) -> None:
    assert await _titles(committed_engine, "caching -secrets", ["web", "secret"], Mode.WORDS) == [
        "HTTP caching"
    ]
    sessions = async_sessionmaker(committed_engine, expire_on_commit=False)
    async with sessions() as session:
        query = parse("etags")
        index = repository.index_for(session)
        hits = await index.page(session, query, _scope(["web"]), None, 10, fuzzy=False)
        marks = await index.highlights(session, query, [hit.id for hit in hits])
    assert marks[hits[0].id].snippet == (
        f"Cache-Control headers and {MARK_START}ETags{MARK_END} save work."
    )
