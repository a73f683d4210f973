"""Bounds for integers a client sends: ids and offsets never reach the database out of range.

A number past the column's range fails in the driver, not in validation: asyncpg refuses
2,147,483,648 for an `integer` column, SQLite's driver overflows past 2^63, and the 500 that
follows echoes nothing useful. Every integer path parameter, query parameter and body field is
bounded here or where it is declared (`tests/platform/test_bounds.py` walks the OpenAPI document
for any that is not).
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

# PostgreSQL `integer`, the type of every id column.
MAX_ROW_ID = 2**31 - 1
# Further than any list is paged; keeps OFFSET arithmetic in range.
MAX_OFFSET = 1_000_000

# The id of a stored row, in a path or a body.
RowId = Annotated[int, Interval(ge=1, le=MAX_ROW_ID)]
