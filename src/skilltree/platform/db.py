"""The database: one async engine per process, and a unit of work per request or job.

SQLite (the embedded default), PostgreSQL and MariaDB/MySQL share every query; the differences
live here: connection pragmas for SQLite, pool and timeout settings for the servers, session
settings for MariaDB/MySQL (docs/databases.md).

SQLite has one write lock per database. A transaction that began reading (a deferred `BEGIN`)
and then writes cannot wait for that lock: when another connection holds it or has committed
since, SQLite answers "database is locked" at once, whatever the busy timeout. So on SQLite a
unit of work that writes takes the lock up front: it waits its turn in this process (first come,
first served) and then begins with `BEGIN IMMEDIATE`, which does wait, up to the busy timeout,
for other processes (a worker, a command). Units of work that only read (GET and HEAD requests)
begin as before and run side by side (WAL); if one turns out to have something to write at the
end (a session's sliding expiry), it queues for the lock like any writer and writes in a
transaction of its own. PostgreSQL and MariaDB need none of this: their row locks wait.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.errors import DomainError
from skilltree.platform.fair_pool import FairQueuePool
from skilltree.platform.replica import CONNECT_TIMEOUT_SECONDS as REPLICA_CONNECT_TIMEOUT_SECONDS
from skilltree.platform.replica import Replica, ReplicaRoutingSession, reading_replica

AFTER_COMMIT = "skilltree.after_commit"
# How a SQLite transaction begins, as an execution option of the engine its session is bound to.
BEGIN_OPTION = "skilltree_sqlite_begin"
# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
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


# The unit of work an outer layer opened for the request (platform/http/idempotency.py stores
# the response in the same transaction as the route's work); the request's DbSession joins it.
_REQUEST_SESSION: ContextVar[AsyncSession | None] = ContextVar(
    "skilltree_request_session", default=None
)
# Set by the request's dependency in a shared unit of work: whether its changes are to be kept.
KEEP_CHANGES = "skilltree.keep_changes"


@contextmanager
def shared_with_request(session: AsyncSession) -> Iterator[None]:
    """The request's own unit of work is `session`: the route's dependency uses it instead of
    opening one, and the caller commits or rolls it back (after reading KEEP_CHANGES)."""
    token = _REQUEST_SESSION.set(session)
    try:
        yield
    finally:
        _REQUEST_SESSION.reset(token)


def shared_request_session() -> AsyncSession | None:
    """The unit of work an outer layer opened for this request, if any (never in a rehearsal)."""
    return None if _REHEARSING.get() else _REQUEST_SESSION.get()


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` after the session's unit of work commits; never if it rolls back."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Build the engine for the configured backend; nothing connects until first use."""
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    if settings.is_mysql:
        return _create_mysql_engine(settings)
    return _create_postgresql_engine(settings)


def create_replica(settings: DatabaseSettings, primary: AsyncEngine) -> Replica | None:
    """The read replica of docs/databases.md, when one is configured (nothing connects yet)."""
    if not settings.replica_url:
        return None
    replica_settings = settings.model_copy(
        update={"url": settings.replica_url, "replica_url": None}
    )
    engine = _create_postgresql_engine(replica_settings, timeout=REPLICA_CONNECT_TIMEOUT_SECONDS)
    return Replica(
        engine,
        primary,
        max_lag_seconds=settings.replica_max_lag_seconds,
        check_seconds=settings.replica_check_seconds,
    )


def _create_postgresql_engine(settings: DatabaseSettings, **connect_args: Any) -> AsyncEngine:
    engine = _create_async_engine(
        settings.url,
        echo=settings.echo,
        # First come, first served when every connection is busy (platform/fair_pool.py).
        poolclass=FairQueuePool.with_line_of(settings.pool_max_waiting),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_recycle=settings.pool_recycle_seconds,
        json_deserializer=JSON_DESERIALIZER,
        connect_args=_postgresql_connect_args(settings) | connect_args,
    )
    check_connections_on_checkout(engine, settings)
    return engine


def _postgresql_connect_args(settings: DatabaseSettings) -> dict[str, Any]:
    if not settings.pgbouncer:
        return {
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                "application_name": "skilltree",
            }
        }
    # In transaction mode consecutive transactions of one client connection run on different
    # server connections. asyncpg names and caches prepared statements per connection, so a
    # cached name may not exist on the next server connection, or exist with another query:
    # no cache, and a fresh name for every statement prepared. PgBouncer also refuses startup
    # parameters it does not track (statement_timeout): set that on the role instead
    # (ALTER ROLE skilltree SET statement_timeout = '15s').
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__skilltree_{uuid.uuid4().hex}__",
        "server_settings": {"application_name": "skilltree"},
    }


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
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(BEGIN_OPTION, "BEGIN"))

    return engine


def check_connections_on_checkout(engine: AsyncEngine, settings: DatabaseSettings) -> None:
    """Hand out only connections that still work, without a round trip on a hot one.

    SQLAlchemy's `pool_pre_ping` pings every connection it hands out: on asyncpg a `BEGIN`, an
    empty query and a `ROLLBACK`, three round trips before every request's first statement. A
    connection used a moment ago is almost never dead, and one the server closed is usually
    known to be closed already (the driver read the server's goodbye while it sat idle). So:
    a connection the driver knows is closed is replaced at no cost; one idle longer than
    `pool_ping_idle_seconds` (long enough for a failover, a restart or a firewall to have
    dropped it unseen) is pinged first; any other is used as it is, and a read that meets a
    connection closed in the meantime is retried once on a fresh one (`_retry_a_first_read`).
    """
    if not settings.pool_pre_ping:
        return
    idle_limit = settings.pool_ping_idle_seconds
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None:
            return  # opened for this checkout
        if _known_closed(dbapi_connection):
            raise DisconnectionError("the server closed this connection while it was idle")
        if time.monotonic() - returned_at < idle_limit:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # whatever the driver raises, the connection is unusable
            raise DisconnectionError(f"ping failed: {error!r}") from error


_RETURNED_AT = "skilltree.returned_at"


def _known_closed(dbapi_connection: Any) -> bool:
    """Whether the driver already knows the server closed the connection (asyncpg does)."""
    is_closed = getattr(getattr(dbapi_connection, "driver_connection", None), "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


class UnitOfWorkSession(Session):
    """The ORM session of every unit of work (its events are scoped to this class)."""


# Set on a session once a statement of its current transaction reached the server.
_STATEMENT_SENT = "skilltree.statement_sent"


@event.listens_for(UnitOfWorkSession, "do_orm_execute")
def _retry_a_first_read(state: ORMExecuteState) -> Any:
    """A SELECT that opens its transaction and finds the connection closed under it (between
    checkout and the statement, or unseen by the checkout check) runs once more on a fresh
    connection. Safe because nothing of the transaction has run: no earlier read whose
    snapshot it would leave, no write. A write, or a read after anything else in the same
    transaction, is never retried: the error reaches the caller."""
    session = state.session
    if not state.is_select or session.info.get(_STATEMENT_SENT) or _has_changes(session):
        session.info[_STATEMENT_SENT] = True
        return None  # the statement runs as usual
    try:
        result = state.invoke_statement()
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        session.rollback()  # forget the dead connection; nothing had been done on it
        result = state.invoke_statement()
    session.info[_STATEMENT_SENT] = True
    return result


@event.listens_for(UnitOfWorkSession, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_STATEMENT_SENT, None)


def is_mysql(dialect_name: str) -> bool:
    """MySQL and MariaDB: one dialect family (SQLAlchemy names MariaDB "mariadb" when asked)."""
    return dialect_name in {"mysql", "mariadb"}


def _create_mysql_engine(settings: DatabaseSettings) -> AsyncEngine:
    engine = _create_async_engine(
        settings.url,
        echo=settings.echo,
        poolclass=FairQueuePool.with_line_of(settings.pool_max_waiting),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_recycle=settings.pool_recycle_seconds,
        json_deserializer=JSON_DESERIALIZER,
        # PostgreSQL's default: a statement sees what other transactions committed before it
        # began. InnoDB's REPEATABLE READ would pin the first read's snapshot for the whole
        # transaction, and a queue claim or an upsert would then act on stale rows.
        isolation_level="READ COMMITTED",
        connect_args={"charset": "utf8mb4"},
    )
    check_connections_on_checkout(engine, settings)
    timeout_ms = settings.statement_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Timestamps are stored and read as UTC whatever the server's zone; strict mode makes an
        # over-long or invalid value an error, as on PostgreSQL, instead of a silent truncation.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        cursor.execute(
            "SET sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
            "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
        )
        # Notes ("name ignored for PRIMARY key", "table does not exist" on IF EXISTS) are not
        # problems, and the driver would print each one.
        cursor.execute("SET sql_notes = 0")
        cursor.execute("SELECT VERSION()")
        (version,) = cursor.fetchone()
        if timeout_ms:
            # MariaDB bounds every statement (in seconds); MySQL bounds SELECTs (in ms).
            if "mariadb" in str(version).lower():
                cursor.execute(f"SET max_statement_time = {timeout_ms / 1000:.3f}")
            else:
                cursor.execute(f"SET max_execution_time = {int(timeout_ms)}")
        cursor.close()

    return engine


UnitOfWorkHook = Callable[[AsyncSession], None]


def _has_changes(session: AsyncSession | Session) -> bool:
    return bool(session.new or session.dirty or session.deleted)


class NestedWriter(RuntimeError):
    """A unit of work that writes opened another that writes: on SQLite it would wait for itself."""


class _WriterQueue:
    """SQLite's write lock, handed out in this process one unit of work at a time, in order."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise NestedWriter("open the second unit of work after the first one has ended")
        await self._lock.acquire()
        self._holder = task

    def release(self) -> None:
        self._holder = None
        self._lock.release()


class Database:
    """Owns the engine and hands out sessions; created in the app lifespan, disposed at shutdown."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        *,
        replica: Replica | None = None,
    ) -> None:
        self.engine = engine
        # Reading units of work that ask for it read here while it keeps up (platform/replica.py).
        self.replica = replica
        self._replica_sessionmaker = (
            None
            if replica is None
            else async_sessionmaker(
                sync_session_class=ReplicaRoutingSession,
                info=replica.session_info(),
                expire_on_commit=False,
                autoflush=False,
            )
        )
        # Tests pass a sessionmaker bound to one connection whose transaction they roll back.
        self.sessionmaker = sessionmaker or async_sessionmaker(
            engine, sync_session_class=UnitOfWorkSession, expire_on_commit=False, autoflush=False
        )
        self._writers: _WriterQueue | None = None
        self._writer_sessionmaker = self.sessionmaker
        if engine.dialect.name == "sqlite":
            self._writers = _WriterQueue()
            if sessionmaker is None:
                immediate = engine.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})
                self._writer_sessionmaker = async_sessionmaker(
                    immediate,
                    sync_session_class=UnitOfWorkSession,
                    expire_on_commit=False,
                    autoflush=False,
                )
        # A reader's late changes get a transaction of their own. Not in tests whose sessions
        # all share one connection, whose transaction is rolled back at the end.
        self._late_writes = self._writers is not None and sessionmaker is None
        self._unit_of_work_hooks: list[UnitOfWorkHook] = []

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        engine = create_engine(settings)
        return cls(engine, replica=create_replica(settings, engine))

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
    async def unit_of_work(
        self, *, writes: bool = True, from_replica: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed if the block succeeds and rolled back if it raises.

        `writes=False` promises a unit of work that (almost always) only reads: on SQLite it
        runs beside the others instead of queueing for the write lock. Callbacks registered
        with `after_commit` (cache invalidation, handing a committed e-mail on) run only once
        the commit succeeded, and are dropped on rollback.

        `from_replica=True` (with `writes=False`) reads the replica when one is configured and
        keeps up, and the primary otherwise; a statement that writes goes to the primary.
        """
        queued = writes and self._writers is not None
        # A domain error that keeps its changes (a failed sign-in's audit row) commits them;
        # it is raised once the commit's callbacks have run, as after any commit.
        kept_failure: DomainError | None = None
        if queued:
            await self._acquire_writer()
        try:
            maker = self._writer_sessionmaker if queued else self.sessionmaker
            async with self._open(maker, from_replica=from_replica and not writes) as session:
                for hook in self._unit_of_work_hooks:
                    hook(session)
                try:
                    yield session
                    if _REHEARSING.get():
                        await session.rollback()
                        session.info.pop(AFTER_COMMIT, None)
                        return
                    if not queued and self._late_writes and _has_changes(session):
                        await self._write_late(session)
                    else:
                        await session.commit()
                except DomainError as error:
                    if _REHEARSING.get() or not error.keeps_changes:
                        await session.rollback()
                        raise
                    if not queued and self._late_writes and _has_changes(session):
                        await self._write_late(session)
                    else:
                        await session.commit()
                    kept_failure = error
                except BaseException:
                    await session.rollback()
                    raise
                callbacks = session.info.pop(AFTER_COMMIT, [])
        finally:
            if queued:
                self._release_writer()
        for callback in callbacks:
            await callback()
        if kept_failure is not None:
            raise kept_failure

    @asynccontextmanager
    async def _open(
        self, maker: async_sessionmaker[AsyncSession], *, from_replica: bool
    ) -> AsyncIterator[AsyncSession]:
        """A session of `maker`, or one reading the replica when asked for and usable."""
        replica, replica_sessions = self.replica, self._replica_sessionmaker
        if from_replica and replica and replica_sessions and await replica.usable():
            async with replica_sessions() as session:
                with reading_replica(replica.read_your_writes_seconds):
                    yield session
            return
        async with maker() as session:
            yield session

    async def _acquire_writer(self) -> None:
        assert self._writers is not None
        await self._writers.acquire()

    def _release_writer(self) -> None:
        assert self._writers is not None
        self._writers.release()

    async def _write_late(self, session: AsyncSession) -> None:
        """A SQLite unit of work begun as a reader has changes: end its read transaction, take
        the write lock in turn, and write them in a transaction of their own."""
        await self._acquire_writer()
        try:
            connection = await session.connection()
            await connection.exec_driver_sql("COMMIT")  # the read transaction: nothing written
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            await session.commit()
        finally:
            self._release_writer()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.dispose()
