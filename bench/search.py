"""`python -m bench.search`: search latency and index size with 10,000 topics and 1,000,000 notes.

Fills a throwaway PostgreSQL database with set-based SQL: a 10,000-topic roadmap whose titles
and summaries are drawn from the built-in roadmap's own words (frequent words more often, as in
real text), `--learners` learners sharing `--notes` notes of 30 such words, and the search
index rows a `skilltree search reindex` would write. Then it calls the search service — the
same call GET /v1/search makes, SQL, ranking, counts and highlights included — for two-word
queries drawn the same way, as an anonymous visitor (topics only) and as learners (topics and
their own notes), in words and prefix mode. Each figure comes with the p50 of `SELECT 1`
through the same pool, measured in the same run, so a busy machine shows as a slow baseline.

The goal: p99 under 50 ms for a two-word query. `--notes 100000` makes a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import text

from bench import generate
from bench.stage import asyncpg_dsn, skilltree_cli, skilltree_env, throwaway_database
from skilltree.identity import ANONYMOUS, Viewer
from skilltree.models import Base  # noqa: F401  (registers every table)
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database
from skilltree.roadmaps.builtin import load_builtin
from skilltree.search import service
from skilltree.search.query import Mode

GOAL_P99_MS = 50.0
NOTE_WORDS = 30
TOPIC_TITLE_WORDS = 3
TOPIC_SUMMARY_WORDS = 20


def vocabulary() -> list[str]:
    """The built-in roadmap's words, most frequent first (rank r is drawn about 1/r as often)."""
    counts: Counter[str] = Counter()

    def walk(topics: list[object]) -> None:
        for topic in topics:
            for field in ("title", "summary", "why"):
                value = getattr(topic, field, "") or ""
                counts.update(w for w in re.findall(r"[a-z]{3,}", value.lower()))
            walk(list(getattr(topic, "children", [])))

    walk(list(load_builtin().document.topics))
    return [word for word, _ in counts.most_common()]


# Words are drawn with a skew toward the frequent ones: rank floor(n * r^3) for uniform r. The
# index mentions the inner series (`+ 0 * g`) so each word is an aggregate of the subquery.


async def fill(dsn: str, topics: int, learners: int, notes: int, words: list[str]) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        roadmap_id = await generate.add_roadmap(connection, "search-bench", topics, now)
        await connection.execute(
            """
            UPDATE topics SET
              title = (SELECT string_agg(
                           w[1 + floor(cardinality(w) * power(random(), 3))::int + 0 * g], ' ')
                       FROM generate_series(1, $3 + 0 * topics.id) AS g),
              summary = (SELECT string_agg(
                           w[1 + floor(cardinality(w) * power(random(), 3))::int + 0 * g], ' ')
                         FROM generate_series(1, $4 + 0 * topics.id) AS g)
            FROM (SELECT $2::text[] AS w) AS vocabulary
            WHERE roadmap_id = $1
            """,
            roadmap_id,
            words,
            TOPIC_TITLE_WORDS,
            TOPIC_SUMMARY_WORDS,
        )
        learner_ids = await generate.add_learners(connection, learners, now)
        topic_ids = [row["id"] for row in await connection.fetch(
            "SELECT id FROM topics WHERE roadmap_id = $1 ORDER BY id", roadmap_id
        )]  # fmt: skip
        # Note k: learner k % L, on topic (k / L + 7 * (k % L)) % T: distinct per learner.
        await connection.execute(
            """
            INSERT INTO topic_notes (user_id, topic_id, markdown, html, updated_at)
            SELECT ($1::int[])[1 + k % $3], ($2::int[])[1 + (k / $3 + 7 * (k % $3)) % $4],
                   (SELECT string_agg(
                           w[1 + floor(cardinality(w) * power(random(), 3))::int + 0 * g], ' ')
                    FROM generate_series(1, $8 + 0 * k) AS g),
                   '', $6
            FROM generate_series(0, $5 - 1) AS k, (SELECT $7::text[] AS w) AS vocabulary
            """,
            learner_ids,
            topic_ids,
            len(learner_ids),
            len(topic_ids),
            notes,
            now,
            words,
            NOTE_WORDS,
        )
        # What `skilltree search reindex` writes, in two statements.
        await connection.execute(
            """
            INSERT INTO search_documents (key, kind, roadmap_id, topic_id, user_id, title, body,
                                          updated_at)
            SELECT 'topic:' || id, 'topic', roadmap_id, id, NULL, title, summary, updated_at
            FROM topics
            """
        )
        await connection.execute(
            """
            INSERT INTO search_documents (key, kind, roadmap_id, topic_id, user_id, title, body,
                                          updated_at)
            SELECT 'note:' || n.user_id || ':' || n.topic_id, 'note', t.roadmap_id, n.topic_id,
                   n.user_id, '', n.markdown, n.updated_at
            FROM topic_notes AS n JOIN topics AS t ON t.id = n.topic_id
            """
        )
        await connection.execute("VACUUM ANALYZE search_documents")
        await generate.analyze(connection)
        print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return learner_ids
    finally:
        await connection.close()


async def index_sizes(dsn: str) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            """
            SELECT relname::text AS name, pg_relation_size(oid) AS bytes FROM pg_class
            WHERE relname LIKE 'ix_search_documents%' OR relname = 'search_documents'
            UNION ALL
            SELECT 'total (table, TOAST, every index)',
                   pg_total_relation_size('search_documents')
            ORDER BY 2 DESC
            """
        )
        return [(row["name"], row["bytes"]) for row in rows]
    finally:
        await connection.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


async def measure(url: str, learners: list[int], words: list[str], count: int) -> None:
    database = Database.from_settings(DatabaseSettings(url=url))
    pick = random.Random(7)
    # Query words from the frequent half of the vocabulary: they match many rows.
    common = words[: max(2, len(words) // 2)]

    def two_words() -> str:
        return f"{pick.choice(common)} {pick.choice(common)}"

    async def select_one() -> None:
        async with database.unit_of_work() as session:
            await session.execute(text("SELECT 1"))

    def searching(viewer: Viewer, mode: Mode, personal: bool) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            q = two_words() if mode == Mode.WORDS else pick.choice(common)[:4]
            request = service.SearchRequest(text=q, mode=mode)
            async with database.unit_of_work() as session:
                return await service.search(session, viewer, request, personal=personal)

        return call

    def learner() -> Viewer:
        return Viewer(user_id=pick.choice(learners))

    try:
        await timed(select_one, 20)  # warm the pool
        baseline = statistics.median(await timed(select_one, count))
        cases = [
            ("anonymous, two words (topics)", searching(ANONYMOUS, Mode.WORDS, False)),
            ("learner, two words (topics + own notes)", None),
            ("learner, prefix of 4 letters", None),
        ]
        print(f"SELECT 1 p50: {baseline:.2f} ms ({count} calls)")
        print(
            f"{'query':42} {'p50 ms':>8} {'p99 ms':>8} {'p50/SELECT 1':>13} {'p99/SELECT 1':>13}"
            "  goal p99 < 50 ms"
        )
        for name, call in cases:
            if call is None:
                mode = Mode.PREFIX if "prefix" in name else Mode.WORDS

                async def as_learner(mode: Mode = mode) -> object:
                    return await searching(learner(), mode, True)()

                call = as_learner
            await timed(call, 10)
            durations = await timed(call, count)
            p50, p99 = percentile(durations, 0.5), percentile(durations, 0.99)
            verdict = "met" if p99 < GOAL_P99_MS else "MISSED"
            print(
                f"{name:42} {p50:8.1f} {p99:8.1f} {p50 / baseline:13.1f} {p99 / baseline:13.1f}"
                f"  {verdict}"
            )
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--notes", type=int, default=1_000_000)
    parser.add_argument("--learners", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=300, help="per kind of query")
    args = parser.parse_args()
    if args.notes > args.learners * args.topics:
        sys.exit("--notes must not exceed --learners x --topics (one note per learner and topic)")
    words = vocabulary()
    with throwaway_database() as url:
        skilltree_cli(skilltree_env(url, "skilltree-bench-search:"), "migrate", "upgrade")
        learners = asyncio.run(
            fill(asyncpg_dsn(url), args.topics, args.learners, args.notes, words)
        )
        print(f"{args.topics:,} topics, {args.notes:,} notes of {args.learners:,} learners, "
              f"{len(words):,} distinct words")  # fmt: skip
        asyncio.run(measure(url, learners, words, args.queries))
        for name, size in asyncio.run(index_sizes(asyncpg_dsn(url))):
            print(f"{name:45} {size / 2**20:9.1f} MiB")


if __name__ == "__main__":
    main()
