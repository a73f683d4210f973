"""Bulk data for the scale benchmarks: roadmaps of any size, learners, and their progress.

Every function is one set-based statement (`INSERT ... SELECT ... FROM generate_series`), so a
million progress rows take seconds rather than the hours an ORM insert per row would. The rows
have the shape the app writes itself — a progress event, the projection row that follows from
it, a review card for each finished topic — so the endpoints read them as they would real data.
PostgreSQL only (generate_series, data-modifying CTEs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Each section holds this many topics: the section itself and its children.
SECTION_SIZE = 20
SUMMARY = "A generated topic of the scale benchmark, about as long as a built-in topic summary."
NO_PASSWORD = "!"  # noqa: S105  (no hash matches it: generated learners cannot sign in)
# Statuses dealt in turn (see add_progress): half done, as a roadmap well under way.
STATUS_BY_REMAINDER = ["done"] * 5 + ["in_progress"] * 3 + ["skipped", "todo"]


@dataclass(frozen=True)
class TreeShape:
    sections: int
    children: int


def tree_shape(topics: int) -> TreeShape:
    """How `topics` topics are laid out: sections of SECTION_SIZE, the rest their children."""
    if topics < 1:
        raise ValueError("a roadmap needs at least one topic")
    sections = math.ceil(topics / SECTION_SIZE)
    return TreeShape(sections, topics - sections)


async def add_roadmap(connection: asyncpg.Connection, slug: str, topics: int, now: datetime) -> int:
    """A public roadmap of `topics` topics in two levels; returns its id."""
    shape = tree_shape(topics)
    roadmap_id: int = await connection.fetchval(
        """
        INSERT INTO roadmaps (slug, title, description, source, version, content_hash,
                              visibility, created_at, updated_at)
        VALUES ($1::text, $2, '', 'import', 1, md5($1::text) || md5($1::text), 'public', $3, $3)
        RETURNING id
        """,
        slug,
        f"Scale benchmark, {topics} topics",
        now,
    )
    await connection.execute(
        """
        INSERT INTO topics (roadmap_id, parent_id, position, slug, title, summary, why, level,
                            tags, seeds, aliases, resources, implemented_in, created_at,
                            updated_at)
        SELECT $1, NULL, n, 'section-' || n, 'Section ' || n, $2, '', NULL,
               '[]', '[]', '[]', '[]', '[]', $3, $3
        FROM generate_series(0, $4 - 1) AS n
        """,
        roadmap_id,
        SUMMARY,
        now,
        shape.sections,
    )
    # Child n belongs to section n % sections, at position n / sections within it.
    await connection.execute(
        """
        INSERT INTO topics (roadmap_id, parent_id, position, slug, title, summary, why, level,
                            tags, seeds, aliases, resources, implemented_in, estimate_hours,
                            created_at, updated_at)
        SELECT $1, section.id, n / $4, 'topic-' || n, 'Topic ' || n, $2, '',
               (ARRAY['beginner', 'intermediate', 'advanced'])[1 + n % 3],
               '[]', '[]', '[]', '[]', '[]', 1.5, $3, $3
        FROM generate_series(0, $5 - 1) AS n
        JOIN topics AS section
          ON section.roadmap_id = $1 AND section.parent_id IS NULL AND section.position = n % $4
        """,
        roadmap_id,
        SUMMARY,
        now,
        shape.sections,
        shape.children,
    )
    return roadmap_id


async def add_learners(
    connection: asyncpg.Connection, count: int, now: datetime, *, domain: str = "scale.example"
) -> list[int]:
    """`count` accounts that exist only to own progress rows; returns their ids in order."""
    rows = await connection.fetch(
        """
        INSERT INTO users (email, display_name, password_hash, email_verified_at, is_admin,
                           created_at, password_changed_at)
        SELECT 'learner-' || n || '@' || $2, 'Learner ' || n, $3, $1, false, $1, $1
        FROM generate_series(1, $4) AS n
        ORDER BY n
        RETURNING id
        """,
        now,
        domain,
        NO_PASSWORD,
        count,
    )
    return sorted(row["id"] for row in rows)


async def leaf_topic_ids(connection: asyncpg.Connection, roadmap_id: int) -> list[int]:
    """The topics without children, which learners mark (sections take their status from
    them)."""
    rows = await connection.fetch(
        """
        SELECT id FROM topics AS topic
        WHERE roadmap_id = $1
          AND NOT EXISTS (SELECT 1 FROM topics AS child WHERE child.parent_id = topic.id)
        ORDER BY id
        """,
        roadmap_id,
    )
    return [row["id"] for row in rows]


async def add_progress(
    connection: asyncpg.Connection,
    learners: Sequence[int],
    roadmap_id: int,
    topics: Sequence[int],
    rows: range,
    now: datetime,
) -> None:
    """Progress rows number `rows.start` to `rows.stop - 1`, dealt to the learners in turn.

    Row k belongs to learner u = k % L and is their j-th row (j = k // L), on topic
    (j + 7u) % T: so learners start at different topics, and no learner has two rows on one
    topic while k < L * T. Its status is STATUS_BY_REMAINDER[(j + u) % 10]: each learner's rows
    cycle through the statuses, and so do the first rows of consecutive learners. Numbering
    lets a run grow the table in steps (rows 0 to 999, then 1,000 to 999,999) with the rows it
    already has left as they are.
    """
    if rows.stop > len(learners) * len(topics):
        raise ValueError(
            f"{rows.stop} rows need more than {len(learners)} learners x {len(topics)} topics"
        )
    await connection.execute(
        """
        WITH picked AS (
            SELECT k,
                   ($1::int[])[(1 + k % $3)::int] AS user_id,
                   ($2::int[])[(1 + ((k / $3) + 7 * (k % $3)) % $4)::int] AS topic_id,
                   ($7::text[])[(1 + (k / $3 + k % $3) % 10)::int] AS status
            FROM generate_series($5::bigint, $6::bigint - 1) AS k
        ),
        events AS (
            INSERT INTO progress_events (user_id, topic_id, roadmap_id, from_status, to_status,
                                         occurred_at)
            SELECT user_id, topic_id, $8, NULL, status,
                   $9::timestamptz - (k % 1440) * interval '1 minute'
            FROM picked
            RETURNING id, user_id, topic_id, to_status, occurred_at
        ),
        projection AS (
            INSERT INTO topic_progress (user_id, topic_id, status, confidence, updated_at,
                                        last_event_id)
            SELECT user_id, topic_id, to_status, NULL, occurred_at, id FROM events
        )
        -- Finished topics get a review card, due from ten days ago to nine days ahead.
        INSERT INTO review_cards (user_id, topic_id, due, fsrs_card, created_at, retired_at)
        SELECT user_id, topic_id, due,
               jsonb_build_object(
                   'card_id', id, 'state', 1, 'step', 0, 'stability', NULL,
                   'difficulty', NULL, 'last_review', NULL,
                   'due', to_char(due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
               ),
               occurred_at, NULL
        FROM (
            SELECT *, $9::timestamptz + ((id / 10) % 20 - 10) * interval '1 day' AS due
            FROM events WHERE to_status = 'done'
        ) AS finished
        """,
        list(learners),
        list(topics),
        len(learners),
        len(topics),
        rows.start,
        rows.stop,
        STATUS_BY_REMAINDER,
        roadmap_id,
        now,
    )


async def analyze(connection: asyncpg.Connection) -> None:
    """Fresh planner statistics, as autovacuum would leave them after a bulk load."""
    await connection.execute(
        "ANALYZE users, roadmaps, topics, progress_events, topic_progress, review_cards"
    )
