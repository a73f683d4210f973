"""The scale benchmark's generator writes data the app reads like its own: a tree of the size
asked for, and progress rows dealt evenly, with review cards for the finished ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bench import generate
from bench.stage import asyncpg_dsn
from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from skilltree.progress import service as progress
from skilltree.reviews import service as reviews
from skilltree.roadmaps import service as roadmaps
from skilltree.roadmaps.policies import ANONYMOUS, Viewer
from tests.support.databases import migrated_postgres_database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_topics_are_laid_out_in_sections_of_twenty() -> None:
    assert generate.tree_shape(100) == generate.TreeShape(sections=5, children=95)
    assert generate.tree_shape(45) == generate.TreeShape(sections=3, children=42)
    assert generate.tree_shape(1) == generate.TreeShape(sections=1, children=0)


def test_a_roadmap_without_topics_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one topic"):
        generate.tree_shape(0)


@dataclass
class Generated:
    connection: asyncpg.Connection
    database: Database


@pytest.fixture(scope="module")
async def generated() -> AsyncIterator[Generated]:
    async with migrated_postgres_database() as url:
        engine = create_async_engine(url)
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            yield Generated(connection, Database(engine))
        finally:
            await connection.close()
            await engine.dispose()


@pytest.mark.postgres
async def test_the_app_reads_a_generated_roadmap_as_a_tree_of_that_size(
    generated: Generated,
) -> None:
    await generate.add_roadmap(generated.connection, "scale-45", 45, NOW)

    async with generated.database.unit_of_work() as session:
        tree = await roadmaps.get_tree(session, "scale-45", ANONYMOUS)

    assert tree.topic_count == 45
    assert [len(section.children) for section in tree.sections] == [14, 14, 14]
    first = tree.sections[0].children
    assert [node.topic.position for node in first] == list(range(14))


@pytest.mark.postgres
async def test_progress_rows_are_dealt_to_learners_in_steps(generated: Generated) -> None:
    connection = generated.connection
    roadmap_id = await generate.add_roadmap(connection, "scale-progress", 45, NOW)
    learners = await generate.add_learners(connection, 10, NOW, domain="steps.example")
    leaves = await generate.leaf_topic_ids(connection, roadmap_id)

    await generate.add_progress(connection, learners, roadmap_id, leaves, range(0, 25), NOW)
    await generate.add_progress(connection, learners, roadmap_id, leaves, range(25, 60), NOW)

    rows = await connection.fetch(
        "SELECT user_id, status FROM topic_progress WHERE user_id = ANY($1::int[])", learners
    )
    assert Counter(row["user_id"] for row in rows) == dict.fromkeys(learners, 6)
    assert Counter(row["status"] for row in rows) == {
        "done": 30,
        "in_progress": 18,
        "skipped": 6,
        "todo": 6,
    }
    statuses_of = {
        learner: {r["status"] for r in rows if r["user_id"] == learner} for learner in learners
    }
    assert all("done" in statuses and len(statuses) > 1 for statuses in statuses_of.values())
    cards = await connection.fetchval(
        "SELECT count(*) FROM review_cards WHERE user_id = ANY($1::int[])", learners
    )
    assert cards == 30


@pytest.mark.postgres
async def test_a_generated_learner_has_a_summary_and_a_due_list(generated: Generated) -> None:
    connection = generated.connection
    roadmap_id = await generate.add_roadmap(connection, "scale-summary", 45, NOW)
    learners = await generate.add_learners(connection, 3, NOW, domain="summary.example")
    leaves = await generate.leaf_topic_ids(connection, roadmap_id)
    await generate.add_progress(connection, learners, roadmap_id, leaves, range(0, 30), NOW)
    first = learners[0]  # rows 0, 3, ... 27: statuses 0 to 9 of STATUS_BY_REMAINDER
    learner = progress.Learner(first, Viewer(user_id=first), FrozenClock(NOW))

    async with generated.database.unit_of_work() as session:
        summary = await progress.roadmap_progress(session, learner, "scale-summary")
        due = await reviews.due_cards(session, first, NOW, None, 50)

    assert summary.tally.counts["done"] == 5
    assert summary.tally.counts["in_progress"] == 3
    due_now = await connection.fetchval(
        "SELECT count(*) FROM review_cards WHERE user_id = $1 AND due <= $2", first, NOW
    )
    assert len(due.items) == due_now > 0


@pytest.mark.postgres
async def test_review_cards_fall_due_over_twenty_days_around_now(generated: Generated) -> None:
    connection = generated.connection
    roadmap_id = await generate.add_roadmap(connection, "scale-cards", 45, NOW)
    learners = await generate.add_learners(connection, 10, NOW, domain="cards.example")
    leaves = await generate.leaf_topic_ids(connection, roadmap_id)
    await generate.add_progress(connection, learners, roadmap_id, leaves, range(0, 400), NOW)

    days = await connection.fetch(
        """
        SELECT DISTINCT extract(day FROM due - $2::timestamptz)::int AS day
        FROM review_cards WHERE user_id = ANY($1::int[])
        """,
        learners,
        NOW,
    )
    assert {row["day"] for row in days} == set(range(-10, 10))


@pytest.mark.postgres
async def test_more_rows_than_learners_times_topics_are_refused(generated: Generated) -> None:
    with pytest.raises(ValueError, match="need more than"):
        await generate.add_progress(generated.connection, [1, 2], 1, [7, 8, 9], range(0, 7), NOW)
