"""Every table's rows, read in a stable order and summarised as a count and a checksum.

`db copy` verifies its target with these summaries and a backup's manifest records them, so a
restore can prove it brought back exactly what was saved. The checksum is computed on values as
skilltree reads them (through the models' column types), not on the bytes a backend stores: the
same installation has the same checksums on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from skilltree.models import Base

DEFAULT_BATCH_ROWS = 1_000


@dataclass(frozen=True)
class TableSummary:
    rows: int
    sha256: str


def tables() -> list[Table]:
    """Every table of the schema, each after the tables it refers to."""
    return list(Base.metadata.sorted_tables)


def ordered(table: Table) -> Any:
    """All of a table's rows in primary-key order (the same order on every backend)."""
    return select(table).order_by(*table.primary_key.columns)


async def stream_rows(
    connection: AsyncConnection, table: Table, batch_rows: int = DEFAULT_BATCH_ROWS
) -> AsyncIterator[Sequence[dict[str, Any]]]:
    """The table's rows in batches of at most `batch_rows`, read through a server-side cursor
    where the driver has one, so memory holds one batch whatever the table's size."""
    result = await connection.stream(ordered(table).execution_options(yield_per=batch_rows))
    async for partition in result.mappings().partitions(batch_rows):
        yield [dict(row) for row in partition]


async def count_rows(connection: AsyncConnection, table: Table) -> int:
    return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


def canonical(value: Any) -> Any:
    """A value in one form whichever backend returned it (JSON-serialisable, key-sorted)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _row_bytes(row: dict[str, Any], columns: Sequence[str]) -> bytes:
    values = [canonical(row[name]) for name in columns]
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS) + b"\n"


async def summarise(connection: AsyncConnection, table: Table) -> TableSummary:
    columns = [column.name for column in table.columns]
    digest = hashlib.sha256()
    rows = 0
    async for batch in stream_rows(connection, table):
        for row in batch:
            digest.update(_row_bytes(row, columns))
            rows += 1
    return TableSummary(rows=rows, sha256=digest.hexdigest())


@asynccontextmanager
async def snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction whose every statement sees the same committed state.

    REPEATABLE READ on PostgreSQL and MariaDB (the engines run READ COMMITTED otherwise);
    a SQLite read transaction in WAL mode is a snapshot already.
    """
    async with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            yield connection


async def summarise_all(engine: AsyncEngine) -> dict[str, TableSummary]:
    """Row count and checksum of every table, read from one snapshot."""
    async with snapshot(engine) as connection:
        return {str(table.name): await summarise(connection, table) for table in tables()}
