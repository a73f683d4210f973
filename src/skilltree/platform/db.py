"""The database: one async engine per process, and a unit of work per request or job.

SQLite (the embedded default) and PostgreSQL share every query; the differences live here:
connection pragmas for SQLite, pool and timeout settings for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.errors import DomainError
from skilltree.platform.fair_pool import FairQueuePool

AFTER_COMMIT = "skilltree.after_commit"
# JSON columns are read with orjson rather than the standard library: a roadmap's tree loads five
# JSON lists per topic, and decoding them was a tenth of the time of an uncached progress summary.
JSON_DESERIALIZER = orjson.loads


# Set while a request is rehearsed (platform/http/idempotency.py): its units of work roll back.
_REHEARSING: ContextVar[bool] = ContextVar("skilltree_rehearsing", default=False)


@contextmanager
def rehearsal() -> Iterator[None]:
    """Every unit of work opened in this block rolls back, whatever happens in it, and its
    after-commit callbacks never run: the code runs with every check, and changes nothing."""
    token = _REHEARSING.set(True)
    try:
        yield
    finally:
        _REHEARSING.reset(token)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` after the session's unit of work commits; never if it rolls back."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Build the engine for the configured backend; nothing connects until first use."""
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    return _create_async_engine(
        settings.url,
        echo=settings.echo,
        # First come, first served when every connection is busy (platform/fair_pool.py).
        poolclass=FairQueuePool,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_recycle=settings.pool_recycle_seconds,
        pool_pre_ping=settings.pool_pre_ping,
        json_deserializer=JSON_DESERIALIZER,
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                "application_name": "skilltree",
            }
        },
    )


def _create_sqlite_engine(settings: DatabaseSettings) -> AsyncEngine:
    database = make_url(settings.url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(
        settings.url, echo=settings.echo, json_deserializer=JSON_DESERIALIZER
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin: the module's
        # own implicit BEGIN breaks SAVEPOINT and transactional DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable with WAL, far fewer fsyncs
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


UnitOfWorkHook = Callable[[AsyncSession], None]


class Database:
    """Owns the engine and hands out sessions; created in the app lifespan, disposed at shutdown."""

    def __init__(
        self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        self.engine = engine
        # Tests pass a sessionmaker bound to one connection whose transaction they roll back.
        self.sessionmaker = sessionmaker or async_sessionmaker(
            engine, expire_on_commit=False, autoflush=False
        )
        self._unit_of_work_hooks: list[UnitOfWorkHook] = []

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        return cls(create_engine(settings))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    def on_every_unit_of_work(self, hook: UnitOfWorkHook) -> None:
        """Call `hook` with the session of every unit of work as it opens, wherever the work runs
        (a request, a task, a command): the cache binds its invalidation this way."""
        self._unit_of_work_hooks.append(hook)

    def remove_unit_of_work_hook(self, hook: UnitOfWorkHook) -> None:
        self._unit_of_work_hooks.remove(hook)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed if the block succeeds and rolled back if it raises.

        Callbacks registered with `after_commit` (cache invalidation, handing a committed
        e-mail on) run only once the commit succeeded, and are dropped on rollback.
        """
        async with self.sessionmaker() as session:
            for hook in self._unit_of_work_hooks:
                hook(session)
            try:
                yield session
                if _REHEARSING.get():
                    await session.rollback()
                    session.info.pop(AFTER_COMMIT, None)
                    return
                await session.commit()
            except DomainError as error:
                if _REHEARSING.get():
                    await session.rollback()
                    raise
                await (session.commit() if error.keeps_changes else session.rollback())
                raise
            except BaseException:
                await session.rollback()
                raise
            for callback in session.info.pop(AFTER_COMMIT, []):
                await callback()

    async def dispose(self) -> None:
        await self.engine.dispose()
