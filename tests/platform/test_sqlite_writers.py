"""SQLite's one write lock: units of work that write queue for it and never fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from skilltree.platform import db as db_module
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database, NestedWriter


class Base(DeclarativeBase):
    pass


class Note(Base):
    """A row a unit of work adds through the ORM (written when the unit of work ends)."""

    __tablename__ = "note"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


@pytest.fixture
async def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    # A wait for the lock that outlasts this fails the test in a second, not in thirty.
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 1000)
    db = Database.from_settings(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"))
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await connection.execute(text("INSERT INTO counter VALUES (0)"))
        await connection.run_sync(Base.metadata.create_all)
    yield db
    await db.dispose()


async def increment(database: Database) -> None:
    async with database.unit_of_work() as session:
        # Read, then write: the pattern a deferred BEGIN cannot serve under contention.
        current = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
        await asyncio.sleep(0)  # let the other writers run in between
        await session.execute(text("UPDATE counter SET n = :n"), {"n": current + 1})


async def test_concurrent_writers_all_commit_and_none_is_lost(database: Database) -> None:
    await asyncio.gather(*(increment(database) for _ in range(32)))

    async with database.unit_of_work(writes=False) as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 32


async def test_readers_do_not_wait_for_a_writer(database: Database) -> None:
    async with database.unit_of_work() as writer:
        await writer.execute(text("UPDATE counter SET n = 5"))
        async with database.unit_of_work(writes=False) as reader:
            # WAL: the reader sees the last committed state, at once.
            assert (await reader.execute(text("SELECT n FROM counter"))).scalar_one() == 0


async def test_a_writer_inside_a_writer_is_refused_instead_of_waiting_for_itself(
    database: Database,
) -> None:
    async with database.unit_of_work():
        with pytest.raises(NestedWriter):
            async with database.unit_of_work():
                pass


async def test_a_reader_that_writes_takes_the_lock_in_turn_so_no_writer_waits_on_it_in_vain(
    database: Database,
) -> None:
    # A GET that writes (a room made on its first visit) wrote in its read transaction, taking
    # SQLite's lock outside the line of writers. A writer then took its turn and waited for
    # that lock, while the reader, at its end, queued behind the writer to write its late
    # changes: each waited for the other until the busy timeout failed the writer.
    wrote = asyncio.Event()

    async def reader_that_writes() -> None:
        async with database.unit_of_work(writes=False) as reader:
            await reader.execute(text("SELECT n FROM counter"))
            await reader.execute(text("UPDATE counter SET n = n + 1"))
            wrote.set()
            await asyncio.sleep(0.3)  # the writer comes meanwhile
            reader.add(Note())  # and a change written as the reader ends

    async def writer() -> None:
        await wrote.wait()
        async with database.unit_of_work() as session:
            await session.execute(text("UPDATE counter SET n = n + 10"))

    async with asyncio.timeout(10):
        await asyncio.gather(reader_that_writes(), writer())

    async with database.unit_of_work(writes=False) as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 11
        assert len((await session.execute(select(Note))).scalars().all()) == 1


async def test_a_reader_that_flushes_takes_the_lock_in_turn(database: Database) -> None:
    async with database.unit_of_work(writes=False) as reader:
        reader.add(Note())
        await reader.flush()
        # Holding SQLite's lock now, the reader holds the line too: a writer waits its turn
        # there, however long, rather than for the lock, which gives up after the busy timeout.
        waiting = asyncio.create_task(increment(database))
        await asyncio.sleep(1.5)
        assert not waiting.done()
    await waiting

    async with database.unit_of_work(writes=False) as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 1


async def test_a_reader_that_writes_inside_a_writer_is_refused_instead_of_waiting_for_it(
    database: Database,
) -> None:
    async with database.unit_of_work() as writer:
        await writer.execute(text("UPDATE counter SET n = 1"))
        async with database.unit_of_work(writes=False) as reader:
            with pytest.raises(NestedWriter):
                await reader.execute(text("UPDATE counter SET n = 2"))


async def test_a_reader_whose_write_fails_leaves_the_line_for_the_next_writer(
    database: Database,
) -> None:
    with pytest.raises(OperationalError):
        async with database.unit_of_work(writes=False) as reader:
            await reader.execute(text("UPDATE no_such_table SET n = 1"))

    async with asyncio.timeout(5):
        await increment(database)


async def test_readers_waiting_to_write_never_hold_up_the_writer_whose_turn_it_is(
    database: Database,
) -> None:
    # Readers that write wait for their turn holding the connection of their read. Had the
    # writer whose turn it was needed one of those connections too, a burst of such readers
    # taking every connection of the pool would have stopped every request until the pool's
    # timeout (a GET making rooms beside POSTs making organisations did).
    async def reader_that_writes() -> None:
        async with database.unit_of_work(writes=False) as reader:
            await reader.execute(text("SELECT n FROM counter"))
            await reader.execute(text("UPDATE counter SET n = n + 1"))

    async with asyncio.timeout(20):
        await asyncio.gather(
            *(reader_that_writes() for _ in range(40)), *(increment(database) for _ in range(40))
        )

    async with database.unit_of_work(writes=False) as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 80


# A statement that keeps SQLite busy for a while (a count over a million generated rows).
SLOW_STATEMENT = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
    "SELECT count(*) FROM c"
)


async def test_a_writer_cancelled_during_a_statement_leaves_the_lock_to_the_next(
    database: Database,
) -> None:
    # A study room's loops are cancelled when its socket closes, maybe in the middle of a
    # statement. The cancelled unit of work's connection kept its transaction, and with it
    # SQLite's lock, until the garbage collector got round to the cancelled task: the next
    # writer waited out the busy timeout and failed.
    async def cancelled_writer() -> None:
        async with database.unit_of_work() as session:
            await session.execute(text("UPDATE counter SET n = 100"))
            await session.execute(text(SLOW_STATEMENT))

    writer = asyncio.create_task(cancelled_writer())
    await asyncio.sleep(0.05)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer

    async with asyncio.timeout(10):
        await increment(database)
    async with database.unit_of_work(writes=False) as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 1
