"""Which failures mean a service the request needs is down, rather than a bug.

A database or Redis that cannot be reached is temporary: the answer is a 503 with Retry-After,
which clients and load balancers retry, instead of a 500 that says the code is wrong. The test
is on the exception and its causes, narrowly: SQLite reports a syntax error as an
OperationalError too, so "OperationalError" alone would hide bugs. What counts:

- the connection itself failing: refused, reset, timed out (Python's ConnectionError and
  TimeoutError, redis-py's ConnectionError and TimeoutError, asyncpg's lost connection);
- SQLAlchemy saying the connection was invalidated, or the pool timing out;
- PostgreSQL's "connection exception" class (SQLSTATE 08) and its shutdown codes (57P01-57P03);
- MySQL/MariaDB client errors for a server that is gone (2002, 2003, 2006, 2013).
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

_OUTAGE_TYPES = (
    ConnectionError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    DisconnectionError,
    PoolTimeoutError,
)
_POSTGRES_SHUTDOWN = frozenset({"57P01", "57P02", "57P03"})
_MYSQL_SERVER_GONE = frozenset({2002, 2003, 2006, 2013})


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or anything that caused it, says a dependency could not be reached."""
    return any(_is_connection_failure(cause) for cause in _causes(error))


def _is_connection_failure(error: BaseException) -> bool:
    if isinstance(error, _OUTAGE_TYPES):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _POSTGRES_SHUTDOWN):
        return True
    code = error.args[0] if error.args else None
    return type(error).__module__.startswith("asyncmy") and code in _MYSQL_SERVER_GONE


def _causes(error: BaseException, limit: int = 10) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped (`orig`) and its `raise ... from` causes, bounded."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < limit:
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "orig", None)
        if isinstance(wrapped, BaseException) and id(wrapped) not in seen:
            yield wrapped
            seen.add(id(wrapped))
        current = (
            current.__cause__
        )  # explicit causes only: a bug raised while handling one is a bug
