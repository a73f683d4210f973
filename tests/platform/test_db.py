"""The unit of work: committed when the block succeeds, rolled back when it raises; hooks that
meet every unit of work; the pool noticing connections the server dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import column, func, insert, literal, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from skilltree.app import create_app
from skilltree.platform import migrations
from skilltree.platform.config import (
    AppSettings,
    DatabaseSettings,
    MailSettings,
    RateLimitSettings,
    Settings,
)
from skilltree.platform.db import Database, after_commit, create_engine
from skilltree.platform.errors import Conflict
from skilltree.platform.models import utc_now
from skilltree.roadmaps.models import Roadmap
from tests.support.databases import temporary_postgres_database
from tests.support.queries import count_statements


def roadmap(slug: str) -> Roadmap:
    now = utc_now()
    return Roadmap(
        slug=slug,
        title=slug,
        description="",
        source="import",
        version=1,
        content_hash="0" * 64,
        created_at=now,
        updated_at=now,
    )


async def count_roadmaps(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(select(func.count(Roadmap.id)))).scalar_one()


async def test_unit_of_work_commits_when_the_block_succeeds(database: Database) -> None:
    async with database.unit_of_work() as session:
        session.add(roadmap("kept"))

    assert await count_roadmaps(database) == 1


async def test_unit_of_work_rolls_back_when_the_block_raises(database: Database) -> None:
    async def add_then_fail() -> None:
        async with database.unit_of_work() as session:
            session.add(roadmap("lost"))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await add_then_fail()

    assert await count_roadmaps(database) == 0


async def test_timestamps_come_back_timezone_aware(database: Database) -> None:
    async with database.unit_of_work() as session:
        session.add(roadmap("tz"))

    async with database.sessionmaker() as session:
        stored = (await session.execute(select(Roadmap))).scalar_one()
        await session.refresh(stored)

    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() is not None


async def test_after_commit_callbacks_run_only_when_the_commit_succeeds(database: Database) -> None:
    ran: list[str] = []

    async def record(name: str) -> None:
        ran.append(name)

    async with database.unit_of_work() as session:
        after_commit(session, lambda: record("committed"))

    async def fail_after_registering() -> None:
        async with database.unit_of_work() as session:
            after_commit(session, lambda: record("rolled back"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_after_registering()

    assert ran == ["committed"]


async def test_an_error_that_keeps_its_changes_is_committed(database: Database) -> None:
    class CountedFailure(Conflict):
        keeps_changes = True

    async def fail_but_keep() -> None:
        async with database.unit_of_work() as session:
            session.add(roadmap("kept-despite-error"))
            raise CountedFailure("recorded, then refused")

    with pytest.raises(CountedFailure):
        await fail_but_keep()

    assert await count_roadmaps(database) == 1


async def test_an_error_that_keeps_its_changes_runs_the_after_commit_callbacks(
    database: Database,
) -> None:
    """What a kept failure committed (a revoked token family) is announced like any commit."""

    class CountedFailure(Conflict):
        keeps_changes = True

    ran: list[str] = []

    async def record() -> None:
        ran.append("announced")

    async def fail_but_keep() -> None:
        async with database.unit_of_work() as session:
            after_commit(session, record)
            raise CountedFailure("recorded, then refused")

    with pytest.raises(CountedFailure):
        await fail_but_keep()

    assert ran == ["announced"]


async def test_every_unit_of_work_meets_the_hooks_until_one_is_removed(database: Database) -> None:
    seen: list[AsyncSession] = []
    database.on_every_unit_of_work(seen.append)

    async with database.unit_of_work() as first:
        pass
    async with database.unit_of_work() as second:
        pass
    database.remove_unit_of_work_hook(seen.append)
    async with database.unit_of_work():
        pass

    assert seen == [first, second]


@pytest.mark.postgres
@pytest.mark.parametrize("pre_ping", [True, False])
async def test_pre_ping_replaces_a_connection_the_server_dropped(pre_ping: bool) -> None:
    async with temporary_postgres_database() as url:
        # Every checkout pinged (an idle threshold of 0): whether the driver has yet read the
        # server's goodbye is then no race; the threshold itself is tested below.
        settings = DatabaseSettings(
            url=url, pool_size=1, pool_pre_ping=pre_ping, pool_ping_idle_seconds=0
        )
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                backend = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            # A failover or an idle timeout, in miniature: another client ends that connection.
            admin = create_engine(DatabaseSettings(url=url))
            async with admin.connect() as connection:
                await connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}
                )
            await admin.dispose()

            async def query_once() -> int:
                async with engine.connect() as connection:
                    return int((await connection.execute(text("SELECT 1"))).scalar_one())

            if pre_ping:
                assert await query_once() == 1
            else:
                with pytest.raises(DBAPIError):
                    await query_once()
        finally:
            await engine.dispose()


def counting_pings(engine: AsyncEngine) -> list[int]:
    """Every ping the pool sends, counted (a ping never shows among the statements)."""
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


@pytest.mark.postgres
async def test_a_connection_used_a_moment_ago_is_not_pinged() -> None:
    async with temporary_postgres_database() as url:
        engine = create_engine(DatabaseSettings(url=url, pool_size=1))
        pings = counting_pings(engine)
        try:
            for _ in range(3):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            assert pings == []
        finally:
            await engine.dispose()


@pytest.mark.postgres
async def test_a_connection_idle_past_the_threshold_is_pinged_before_use() -> None:
    async with temporary_postgres_database() as url:
        settings = DatabaseSettings(url=url, pool_size=1, pool_ping_idle_seconds=0.05)
        engine = create_engine(settings)
        pings = counting_pings(engine)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            await asyncio.sleep(0.1)
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            assert pings == [1]
        finally:
            await engine.dispose()


async def terminate(url: str, backend: int) -> None:
    """A failover or an idle timeout, in miniature: another client ends that connection."""
    admin = create_engine(DatabaseSettings(url=url))
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    finally:
        await admin.dispose()


async def backend_of(session: AsyncSession) -> int:
    connection = await session.connection()
    return int((await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.postgres
async def test_a_first_read_on_a_connection_closed_under_it_is_retried_once() -> None:
    async with temporary_postgres_database() as url:
        database = Database.from_settings(DatabaseSettings(url=url, pool_size=1))
        try:
            async with database.unit_of_work(writes=False) as session:
                backend = await backend_of(session)
            async with database.unit_of_work(writes=False) as session:
                await session.connection()  # checked out while alive, closed before the read
                await terminate(url, backend)
                answer = (await session.execute(select(literal(1)))).scalar_one()
            assert answer == 1
        finally:
            await database.dispose()


@pytest.mark.postgres
async def test_a_write_on_a_connection_closed_under_it_is_not_retried() -> None:
    async with temporary_postgres_database() as url:
        database = Database.from_settings(DatabaseSettings(url=url, pool_size=1))
        try:
            async with database.unit_of_work() as session:
                await session.execute(text("CREATE TABLE notes (body text)"))
                backend = await backend_of(session)

            async def write_on_a_closed_connection() -> None:
                async with database.unit_of_work() as session:
                    await session.connection()
                    await terminate(url, backend)
                    await session.execute(insert(table("notes", column("body"))).values(body="x"))

            with pytest.raises(DBAPIError):
                await write_on_a_closed_connection()
            async with database.unit_of_work() as session:
                count = (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one()
            assert count == 0
        finally:
            await database.dispose()


@pytest.fixture
async def served_from_postgres(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The app on a database of its own, with its own pool of one connection."""
    async with temporary_postgres_database() as url:
        engine = create_engine(DatabaseSettings(url=url))
        await migrations.upgrade(engine)
        await engine.dispose()
        settings = Settings(
            app=AppSettings(env="test"),
            database=DatabaseSettings(url=url, pool_size=1, max_overflow=0),
            mail=MailSettings(outbox_dir=tmp_path / "outbox"),
            rate_limit=RateLimitSettings(enabled=False),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client, url


async def terminate_the_apps_connections(url: str) -> int:
    admin = create_engine(DatabaseSettings(url=url))
    try:
        async with admin.connect() as connection:
            ended = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = 'skilltree'"
                )
            )
            return len(ended.all())
    finally:
        await admin.dispose()


@pytest.mark.postgres
async def test_a_get_after_the_server_closed_the_apps_connection_succeeds(
    served_from_postgres: tuple[httpx.AsyncClient, str],
) -> None:
    client, url = served_from_postgres
    assert (await client.get("/v1/roadmaps")).status_code == 200

    assert await terminate_the_apps_connections(url) >= 1

    response = await client.get("/v1/roadmaps")
    assert response.status_code == 200, response.text


@pytest.mark.postgres
async def test_requests_on_a_hot_connection_send_no_ping(
    served_from_postgres: tuple[httpx.AsyncClient, str],
) -> None:
    """Before: every request's checkout sent BEGIN, an empty query and ROLLBACK first."""
    client, _ = served_from_postgres
    engine = client._transport.app.state.resources.database.engine  # type: ignore[attr-defined]
    pings = counting_pings(engine)
    per_request = []
    for _ in range(5):
        with count_statements(engine) as log:
            assert (await client.get("/v1/roadmaps")).status_code == 200
        per_request.append(log.count)
    assert pings == []
    # Only the route's own statements, the same for every request (the ping sent three
    # round trips of its own, which no statement log shows).
    assert per_request == [per_request[0]] * 5


async def statements_share_a_transaction(session: AsyncSession) -> bool:
    """Whether this statement and the next run in one transaction: a setting made local to
    the transaction by the first is still there for the second only if they share it."""
    await session.execute(select(func.set_config("skilltree.probe", "set", True)))
    query = select(func.current_setting("skilltree.probe", True))
    return (await session.execute(query)).scalar_one() == "set"


@pytest.fixture
async def postgres_database() -> AsyncIterator[Database]:
    """A Database of its own on a fresh PostgreSQL database, with a `notes` table."""
    async with temporary_postgres_database() as url:
        database = Database.from_settings(DatabaseSettings(url=url, pool_size=1))
        try:
            async with database.unit_of_work() as session:
                await session.execute(text("CREATE TABLE notes (body text)"))
            yield database
        finally:
            await database.dispose()


NOTES = table("notes", column("body"))


async def count_notes(database: Database) -> int:
    async with database.unit_of_work(writes=False) as session:
        return int((await session.execute(select(func.count()).select_from(NOTES))).scalar_one())


@pytest.mark.postgres
async def test_a_reading_unit_of_work_on_postgresql_reads_outside_a_transaction(
    postgres_database: Database,
) -> None:
    """Its reads need no BEGIN and COMMIT: at READ COMMITTED each sees what it would see in one."""
    async with postgres_database.unit_of_work(writes=False) as session:
        assert not await statements_share_a_transaction(session)
    async with postgres_database.unit_of_work() as session:
        assert await statements_share_a_transaction(session)
    # The connection went back to the pool transactional: the writer above got a transaction.


@pytest.mark.postgres
async def test_a_reading_unit_of_work_that_writes_does_so_in_a_transaction(
    postgres_database: Database,
) -> None:
    async with postgres_database.unit_of_work(writes=False) as session:
        await session.execute(select(literal(1)))
        await session.execute(insert(NOTES).values(body="kept"))
        assert await statements_share_a_transaction(session)
    assert await count_notes(postgres_database) == 1

    async def write_then_fail() -> None:
        async with postgres_database.unit_of_work(writes=False) as session:
            await session.execute(select(literal(1)))
            await session.execute(insert(NOTES).values(body="rolled back"))
            raise Conflict("after the write")

    with pytest.raises(Conflict):
        await write_then_fail()
    assert await count_notes(postgres_database) == 1


@pytest.mark.postgres
async def test_a_reading_unit_of_work_flushes_its_changes_in_one_transaction() -> None:
    async with temporary_postgres_database() as url:
        database = Database.from_settings(DatabaseSettings(url=url, pool_size=1))
        try:
            await migrations.upgrade(database.engine)

            async def add(*slugs: str) -> None:
                async with database.unit_of_work(writes=False) as session:
                    await session.execute(select(literal(1)))
                    session.add_all([roadmap(slug) for slug in slugs])

            with pytest.raises(DBAPIError):
                await add("first", "first")  # the second breaks the slug's uniqueness
            assert await count_roadmaps(database) == 0
            await add("first", "second")
            assert await count_roadmaps(database) == 2
        finally:
            await database.dispose()


@pytest.mark.postgres
async def test_a_row_lock_in_a_reading_unit_of_work_is_held_until_it_ends(
    postgres_database: Database,
) -> None:
    async with postgres_database.unit_of_work() as session:
        await session.execute(insert(NOTES).values(body="locked"))
    async with postgres_database.unit_of_work(writes=False) as session:
        await session.execute(select(NOTES.c.body).with_for_update())
        assert await statements_share_a_transaction(session)
