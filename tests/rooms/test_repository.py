"""Rooms made on first use: making one that exists returns it instead of failing on its key."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts.models import User
from skilltree.orgs.models import Organisation
from skilltree.platform.models import utc_now
from skilltree.rooms import repository
from skilltree.rooms.models import Room


async def test_making_a_room_that_exists_returns_it(session: AsyncSession) -> None:
    now = utc_now()
    user = User(
        email="ada@example.org",
        display_name="Ada",
        password_hash="x",
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    await session.flush()
    org = Organisation(slug="cohort-7", name="Cohort 7", created_at=now)
    session.add(org)
    await session.flush()
    values = {
        "org_id": org.id,
        "key": "lobby",
        "title": "Cohort 7 lobby",
        "created_by": user.id,
        "created_at": now,
        "last_seq": 0,
    }

    first = await repository.ensure_room(session, values)
    second = await repository.ensure_room(session, values | {"title": "another title"})

    count = await session.scalar(select(func.count()).select_from(Room))
    assert (second.id, second.title, count) == (first.id, "Cohort 7 lobby", 1)
