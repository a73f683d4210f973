"""Rows made directly in the database, for tests below the HTTP layer (property tests run
hundreds of examples; signing up through the API for each would take minutes)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import User
from skilltree.roadmaps.models import Roadmap, Topic

_numbers = itertools.count(1)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


async def make_user(session: AsyncSession) -> User:
    n = next(_numbers)
    user = User(
        email=f"row-{n}@example.org",
        display_name=f"Row {n}",
        password_hash="not-a-real-hash",
        created_at=EPOCH,
        password_changed_at=EPOCH,
    )
    session.add(user)
    await session.flush()
    return user


async def make_roadmap(session: AsyncSession, topics: int) -> tuple[Roadmap, list[Topic]]:
    """A public roadmap of one section holding `topics` leaves."""
    n = next(_numbers)
    roadmap = Roadmap(slug=f"rows-{n}", title=f"Rows {n}", source="import", content_hash="0" * 64)
    session.add(roadmap)
    await session.flush()
    section = Topic(roadmap_id=roadmap.id, position=0, slug="section", title="Section")
    session.add(section)
    await session.flush()
    leaves = [
        Topic(roadmap_id=roadmap.id, parent_id=section.id, position=i, slug=f"t{i}", title=f"T{i}")
        for i in range(topics)
    ]
    session.add_all(leaves)
    await session.flush()
    return roadmap, leaves
