"""Copy a whole installation from one database to another (SQLite, PostgreSQL, MariaDB/MySQL).

The use case is outgrowing one machine: `skilltree db copy --from sqlite+aiosqlite:///var/...
--to postgresql+asyncpg://...`. The target's schema is built by the migrations (never by
`create_all`), then every table is copied in foreign-key order, in batches read through a
server-side cursor, so memory holds one batch whatever the installation's size.

All rows are written in one transaction on the target: a copy that fails half-way leaves the
target as it was, and running the command again is safe. A target that already holds rows is
refused unless `replace=True`, which rebuilds its schema from empty first. The copy is verified
at the end: every table's row count and checksum (platform/tabledata.py) must equal the
source's, read in one consistent transaction there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Integer, Table, bindparam, false, func, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from skilltree.platform import migrations, tabledata
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine

# (table name, rows copied so far in that table, rows it holds); called after every batch.
Progress = Callable[[str, int, int], None]


class CopyRefused(Exception):
    """The copy cannot start, or its result did not verify."""


@dataclass(frozen=True)
class CopyReport:
    tables: dict[str, tabledata.TableSummary]

    @property
    def rows(self) -> int:
        return sum(summary.rows for summary in self.tables.values())


async def copy_database(
    source_url: str,
    target_url: str,
    *,
    replace: bool = False,
    batch_rows: int = tabledata.DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy every row from `source_url` to `target_url`, then verify both sides match."""
    source = create_engine(DatabaseSettings(url=source_url))
    target = create_engine(DatabaseSettings(url=target_url))
    try:
        return await _copy(source, target, replace, batch_rows, progress)
    finally:
        await source.dispose()
        await target.dispose()


async def _copy(
    source: AsyncEngine,
    target: AsyncEngine,
    replace: bool,
    batch_rows: int,
    progress: Progress | None,
) -> CopyReport:
    head = migrations.head_revision()
    source_revision = await migrations.current_revision(source)
    if source_revision != head:
        raise CopyRefused(
            f"the source database is at revision {source_revision or 'none'}, not {head}: "
            "run `skilltree migrate upgrade` on it first"
        )
    await _prepare_target(target, replace)

    async with tabledata.snapshot(source) as reader, target.connect() as writer:
        async with writer.begin():
            await _defer_foreign_keys(writer)
            for table in tabledata.tables():
                total = await tabledata.count_rows(reader, table)
                await _copy_table(reader, writer, table, total, batch_rows, progress)
            await _advance_sequences(writer)
        expected = {
            str(table.name): await tabledata.summarise(reader, table)
            for table in tabledata.tables()
        }

    copied = await tabledata.summarise_all(target)
    different = [name for name, summary in expected.items() if copied[name] != summary]
    if different:
        raise CopyRefused(
            "the copy does not match the source in "
            + ", ".join(different)
            + " (was the source written to during the copy?)"
        )
    return CopyReport(tables=copied)


async def _prepare_target(target: AsyncEngine, replace: bool) -> None:
    """Bring the target's schema to the head revision; refuse (or, told to, empty) data."""
    revision = await migrations.current_revision(target)
    if revision is not None and revision not in migrations.known_revisions():
        raise CopyRefused(
            f"the target database is at revision {revision}, which this version does not know"
        )
    if revision is not None and replace:
        await _empty(target)
        await migrations.downgrade(target, "base")
    await migrations.upgrade(target)
    if not replace:
        occupied = await _tables_with_rows(target)
        if occupied:
            raise CopyRefused(
                "the target database already holds data (in "
                + ", ".join(occupied[:5])
                + (", ..." if len(occupied) > 5 else "")
                + "); pass --replace to overwrite it"
            )


async def _empty(engine: AsyncEngine) -> None:
    """Every row deleted, children before parents, before the schema is taken down: on SQLite a
    table is rebuilt to be altered, and dropping the old one with rows in it would cascade
    into the search index's full-text table, which SQLite refuses mid-statement."""
    async with engine.begin() as connection:
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        for table in reversed(tabledata.tables()):
            if table.name in present:
                await connection.execute(table.delete())


async def _tables_with_rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return [
            table.name
            for table in tabledata.tables()
            if await tabledata.count_rows(connection, table)
        ]


async def _defer_foreign_keys(connection: AsyncConnection) -> None:
    # SQLite checks foreign keys at the commit when told to; rows that refer to their own
    # table (a topic's parent) are written in a second pass instead, on every backend.
    if connection.dialect.name == "sqlite":
        await connection.execute(text("PRAGMA defer_foreign_keys = ON"))


def _self_references(table: Table) -> list[str]:
    """Columns whose foreign key points into the same table (filled in after the insert)."""
    return [
        foreign_key.parent.name
        for foreign_key in table.foreign_keys
        if foreign_key.column.table is table and foreign_key.parent.nullable
    ]


async def _copy_table(
    reader: AsyncConnection,
    writer: AsyncConnection,
    table: Table,
    total: int,
    batch_rows: int,
    progress: Progress | None,
) -> None:
    deferred = _self_references(table)
    key = [column.name for column in table.primary_key.columns]
    done = 0
    if progress:
        progress(table.name, done, total)
    async for batch in tabledata.stream_rows(reader, table, batch_rows):
        rows = [{**row, **dict.fromkeys(deferred)} for row in batch] if deferred else batch
        await writer.execute(table.insert(), rows)
        done += len(batch)
        if progress:
            progress(table.name, done, total)
    if deferred:
        await _fill_self_references(reader, writer, table, key, deferred, batch_rows)


async def _fill_self_references(
    reader: AsyncConnection,
    writer: AsyncConnection,
    table: Table,
    key: list[str],
    columns: list[str],
    batch_rows: int,
) -> None:
    # One UPDATE per row with a reference, sent as one batch (executemany) per read batch.
    statement = (
        update(table)
        .where(*[table.c[name] == bindparam(f"key_{name}") for name in key])
        .values({name: bindparam(f"value_{name}") for name in columns})
    )
    async for batch in tabledata.stream_rows(reader, table, batch_rows):
        parameters = [
            {f"key_{name}": row[name] for name in key}
            | {f"value_{name}": row[name] for name in columns}
            for row in batch
            if any(row[name] is not None for name in columns)
        ]
        if parameters:
            await writer.execute(statement, parameters)


async def _advance_sequences(connection: AsyncConnection) -> None:
    """Rows were written with their ids; make the next generated id follow the largest one.

    MySQL and SQLite do this by themselves; a PostgreSQL sequence does not notice explicit ids.
    """
    if connection.dialect.name != "postgresql":
        return
    for table in tabledata.tables():
        key = list(table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, Integer) and key[0].autoincrement:
            column = key[0]
            largest = select(func.coalesce(func.max(column), 0)).scalar_subquery()
            sequence = func.pg_get_serial_sequence(table.name, column.name)
            await connection.execute(select(func.setval(sequence, largest + 1, false())))
