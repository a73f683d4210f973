"""`python -m bench.tree_build`: the cost of building a large tree, three ways.

`bench.scale` measures the tree through HTTP, where a loaded machine's scheduling shows in every
figure. This measures the build itself, in one process on PostgreSQL, and gives this process's
CPU time beside the wall time, for

- schema-built: ORM rows, one `TopicNodeOut` per topic, as the route did before decision 0043;
- columns (0043): the mapped attributes' columns as tuples, both JSON lists decoded, orjson;
- table columns: what the route does now (`service.tree_rows`, `presenters.tree_json`): the
  table's columns as a Core result, the JSON lists read as text and decoded only when not empty;

alternated twice, the median of five builds each, and checks that all give the same bytes. As
the server does (`skilltree.app.freeze_startup_objects`), what exists before the first build is
frozen out of the garbage collector's sight: otherwise each full collection during a build walks
every object SQLAlchemy and the app loaded, which a server never does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import generate
from bench.stage import asyncpg_dsn, throwaway_database
from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from skilltree.roadmaps import service
from skilltree.roadmaps.models import Roadmap, Topic
from skilltree.roadmaps.policies import ANONYMOUS
from skilltree.roadmaps.presenters import roadmap_out, tree_json
from skilltree.roadmaps.read_models import TreeRows, TreeTopic
from skilltree.roadmaps.schemas import RoadmapTreeOut, TopicNodeOut

SLUG = "scale"
Build = Callable[[AsyncSession], Awaitable[bytes]]


async def schema_built(session: AsyncSession) -> bytes:
    roadmap = (await session.execute(select(Roadmap).where(Roadmap.slug == SLUG))).scalar_one()
    query = select(Topic).where(Topic.roadmap_id == roadmap.id).order_by(Topic.position)
    topics = (await session.execute(query)).scalars().all()
    by_parent: dict[int | None, list[Topic]] = {}
    for topic in topics:
        by_parent.setdefault(topic.parent_id, []).append(topic)
    listing = service.RoadmapListing(service.RoadmapRef.of(roadmap), len(topics))
    body = RoadmapTreeOut(roadmap=roadmap_out(listing), topics=_nodes(by_parent, None))
    return body.model_dump_json().encode()


def _nodes(by_parent: dict[int | None, list[Topic]], parent_id: int | None) -> list[TopicNodeOut]:
    return [
        TopicNodeOut(
            slug=topic.slug,
            title=topic.title,
            summary=topic.summary,
            level=topic.level,  # validated on import
            tags=topic.tags,
            implemented=bool(topic.implemented_in),
            concept=topic.concept,
            estimate_hours=topic.estimate_hours,
            children=_nodes(by_parent, topic.id),
        )
        for topic in by_parent.get(parent_id, [])
    ]


async def columns_0043(session: AsyncSession) -> bytes:
    """The read of decision 0043: the mapped attributes (an ORM-compiled statement), both
    JSON lists decoded by the driver for every topic."""
    roadmap = await service.require_roadmap(session, SLUG, ANONYMOUS)
    query = select(
        Topic.id,
        Topic.parent_id,
        Topic.slug,
        Topic.title,
        Topic.summary,
        Topic.level,
        Topic.tags,
        Topic.implemented_in,
        Topic.concept,
        Topic.estimate_hours,
    ).where(Topic.roadmap_id == roadmap.id)
    query = query.order_by(Topic.parent_id.is_not(None), Topic.parent_id, Topic.position)
    rows = (await session.execute(query)).all()
    topics = [
        TreeTopic(id_, parent, slug, title, summary, level, tags, bool(refs), concept, hours)
        for id_, parent, slug, title, summary, level, tags, refs, concept, hours in rows
    ]
    return tree_json(TreeRows(roadmap, topics))


async def table_columns(session: AsyncSession) -> bytes:
    return tree_json(await service.tree_rows(session, SLUG, ANONYMOUS))


async def measure(database_url: str, size: int) -> None:
    engine = create_engine(DatabaseSettings(url=database_url))
    await migrations.upgrade(engine)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await generate.add_roadmap(connection, SLUG, size, datetime.now(UTC))
    await generate.analyze(connection)
    await connection.close()
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    bodies: dict[str, bytes] = {}
    builds: Sequence[tuple[str, Build]] = (
        ("schema-built", schema_built),
        ("columns (0043)", columns_0043),
        ("table columns", table_columns),
    )
    gc.freeze()
    for name, build in (*builds, *builds):
        walls, cpus = [], []
        for _ in range(5):
            async with sessions() as session:
                wall, cpu = time.perf_counter(), time.process_time()
                bodies[name] = await build(session)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        print(
            f"{name:<14} {size:,} topics: wall {statistics.median(walls) * 1000:.0f} ms, "
            f"this process's CPU {statistics.median(cpus) * 1000:.0f} ms, "
            f"{len(bodies[name]):,} bytes"
        )
    print("same bytes:", len(set(bodies.values())) == 1)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topics", type=int, default=10_000)
    args = parser.parse_args()
    with throwaway_database() as database_url:
        asyncio.run(measure(database_url, args.topics))


if __name__ == "__main__":
    main()
