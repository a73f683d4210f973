"""Feature-flag fixtures: a platform administrator, signed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import update

from skilltree.accounts.models import User
from skilltree.platform.db import Database
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def root(people: People, database: Database) -> Browser:
    person = await people("Root")
    me = (await person.client.get("/v1/me")).json()["id"]
    async with database.unit_of_work() as session:
        await session.execute(update(User).where(User.id == me).values(is_admin=True))
    return person
