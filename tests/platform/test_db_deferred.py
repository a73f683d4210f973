"""A request's unit of work, opened at its first use: one never used costs no session, meets no
hook and ends nothing; one used keeps every guarantee of `Database.unit_of_work`."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.db import Database, DeferredSession, after_commit, rehearsal
from skilltree.platform.errors import Conflict
from skilltree.platform.state import DbSession
from skilltree.roadmaps.models import Roadmap
from tests.platform.test_db import count_roadmaps, roadmap


class KeptFailure(Conflict):
    keeps_changes = True


def deferred(database: Database, opened: list[DeferredSession]) -> DeferredSession:
    session = database.deferred_unit_of_work(writes=True, when_opened=opened.append)
    assert isinstance(session, DeferredSession)
    return session


async def test_a_deferred_unit_of_work_never_used_meets_no_hook(database: Database) -> None:
    seen: list[AsyncSession] = []
    database.on_every_unit_of_work(seen.append)
    opened: list[DeferredSession] = []

    session = deferred(database, opened)

    assert not session.opened
    assert seen == []
    assert opened == []


async def test_its_first_use_opens_it_and_meets_the_hooks_once(database: Database) -> None:
    seen: list[AsyncSession] = []
    database.on_every_unit_of_work(seen.append)
    opened: list[DeferredSession] = []
    session = deferred(database, opened)

    session.add(roadmap("first-use"))
    await session.flush()
    await session.end(None)

    assert session.opened
    assert seen == [session]
    assert opened == [session]
    assert await count_roadmaps(database) == 1


async def test_ending_it_after_success_commits_and_runs_the_callbacks(database: Database) -> None:
    ran: list[str] = []

    async def record() -> None:
        ran.append("committed")

    session = deferred(database, [])
    after_commit(session, record)
    session.add(roadmap("kept"))
    await session.end(None)

    assert ran == ["committed"]
    assert await count_roadmaps(database) == 1


async def test_ending_it_after_an_error_rolls_back_and_drops_the_callbacks(
    database: Database,
) -> None:
    ran: list[str] = []

    async def record() -> None:
        ran.append("committed")

    session = deferred(database, [])
    after_commit(session, record)
    session.add(roadmap("lost"))
    await session.flush()
    await session.end(RuntimeError("boom"))

    assert ran == []
    assert await count_roadmaps(database) == 0


async def test_an_error_that_keeps_its_changes_commits_them(database: Database) -> None:
    session = deferred(database, [])
    session.add(roadmap("kept-despite-error"))
    await session.end(KeptFailure("recorded, then refused"))

    assert await count_roadmaps(database) == 1


async def test_a_rehearsed_deferred_unit_of_work_changes_nothing(database: Database) -> None:
    ran: list[str] = []

    async def record() -> None:
        ran.append("committed")

    with rehearsal():
        session = deferred(database, [])
        after_commit(session, record)
        session.add(roadmap("rehearsed"))
        await session.end(None)

    assert ran == []
    assert await count_roadmaps(database) == 0


def app_on(database: Database, announced: list[str] | None = None) -> FastAPI:
    """Routes that use the request's unit of work as skilltree's routes do."""
    app = FastAPI()

    async def announce() -> None:
        if announced is not None:
            announced.append("committed")

    app.state.resources = SimpleNamespace(database=database)

    @app.get("/nothing")
    async def nothing(session: DbSession) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/roadmaps/{slug}")
    async def add(slug: str, session: DbSession) -> dict[str, bool]:
        session.add(roadmap(slug))
        return {"ok": True}

    @app.post("/roadmaps/{slug}/refused")
    async def add_then_refuse(slug: str, session: DbSession) -> dict[str, bool]:
        session.add(roadmap(slug))
        await session.flush()
        raise HTTPException(409, "refused")

    @app.post("/roadmaps/{slug}/twice")
    async def add_twice(slug: str, session: DbSession) -> dict[str, bool]:
        after_commit(session, announce)
        session.add_all([roadmap(slug), roadmap(slug)])  # flushed, and refused, at the commit
        return {"ok": True}

    @app.get("/roadmaps/count")
    async def count(session: DbSession) -> dict[str, int]:
        total = (await session.execute(select(func.count(Roadmap.id)))).scalar_one()
        return {"count": total}

    return app


@pytest.fixture
async def client(database: Database) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app_on(database))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_request_that_never_uses_its_session_opens_no_unit_of_work(
    database: Database, client: httpx.AsyncClient
) -> None:
    seen: list[AsyncSession] = []
    database.on_every_unit_of_work(seen.append)

    assert (await client.get("/nothing")).status_code == 200

    assert seen == []


async def test_a_request_that_uses_its_session_meets_the_hooks_and_commits(
    database: Database, client: httpx.AsyncClient
) -> None:
    seen: list[AsyncSession] = []
    database.on_every_unit_of_work(seen.append)

    assert (await client.post("/roadmaps/stored")).status_code == 200
    counted = await client.get("/roadmaps/count")

    assert counted.json() == {"count": 1}
    assert len(seen) == 2  # the write's unit of work and the count's


async def test_a_request_that_fails_keeps_nothing(
    database: Database, client: httpx.AsyncClient
) -> None:
    assert (await client.post("/roadmaps/refused/refused")).status_code == 409

    assert (await client.get("/roadmaps/count")).json() == {"count": 0}
    assert await count_roadmaps(database) == 0


async def test_a_commit_that_fails_is_an_error_response_not_a_200(database: Database) -> None:
    announced: list[str] = []
    transport = httpx.ASGITransport(app=app_on(database, announced), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/roadmaps/twin/twice")

    assert response.status_code == 500
    assert announced == []
