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
begin as before and run side by side (WAL); if one turns out to write (a statement that may
write, a flush, or changes left at its end, such as a session's sliding expiry), it first
queues for the lock like any writer, then writes in a transaction of its own. A reader never
writes in its read transaction: that would take SQLite's lock outside the line of writers.
PostgreSQL and MariaDB need none of this: their row locks wait.

On PostgreSQL a unit of work that only reads sends no `BEGIN` and no `COMMIT` (decision 0064):
at READ COMMITTED, the isolation skilltree runs at, each statement of a transaction sees what
was committed when it began, so a read outside a transaction sees exactly what it would see
inside one, and the two round trips bought nothing. The unit of work begins a transaction at
its first write (an INSERT, UPDATE or DELETE, a `SELECT … FOR UPDATE`, a textual statement, a
flush), and commits it as before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import TextClause, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.util import await_

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
        poolclass=FairQueuePool.with_line_of(
            settings.pool_max_waiting, spare_idle_seconds=settings.pool_overflow_idle_seconds
        ),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_recycle=settings.pool_recycle_seconds,
        json_deserializer=JSON_DESERIALIZER,
        connect_args=_postgresql_connect_args(settings) | connect_args,
    )
    check_connections_on_checkout(engine, settings)
    reset_reads_without_transaction(engine)
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


def _create_sqlite_engine(settings: DatabaseSettings, **pool: Any) -> AsyncEngine:
    database = make_url(settings.url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(
        settings.url, echo=settings.echo, json_deserializer=JSON_DESERIALIZER, **pool
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

    @event.listens_for(engine.sync_engine, "handle_error")
    def _a_cancelled_statement_keeps_its_connection(context: ExceptionContext) -> None:
        """A statement whose task is cancelled runs on to its end in the driver's thread, and
        the connection is as good as before: its cursor is closed and its transaction rolled
        back behind the statement, as after any failed one. Taken for lost (what SQLAlchemy
        assumes of a cancellation, which may leave a server's protocol half-way), it was
        closed with the statement unfinalized; Python's sqlite3 then kept it open, with its
        transaction and SQLite's write lock, until the garbage collector freed the cancelled
        task's traceback, and the next writer failed after the busy timeout."""
        if isinstance(context.original_exception, asyncio.CancelledError):
            context.is_disconnect = False

    return engine


def create_writers_engine(settings: DatabaseSettings) -> AsyncEngine | None:
    """On SQLite, the engine its writers use, one at a time (they take turns in the process):
    one connection to the same file, set up as every other, and kept for them alone. A writer
    whose turn came never waits for a connection, so readers that wait for their own turn to
    write, holding the connections of their reads, cannot hold it up however many they are.
    None elsewhere, and for an in-memory database, which is one connection's own."""
    if not settings.is_sqlite or make_url(settings.url).database in (None, "", ":memory:"):
        return None
    # One connection is all a writer at a time needs; two spare should a writer's session not
    # have given its own back (a close cut short).
    return _create_sqlite_engine(settings, pool_size=1, max_overflow=2)


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


# Set on the session of a reading unit of work whose reads need no transaction (PostgreSQL).
_READS_WITHOUT_TRANSACTION = "skilltree.reads_without_transaction"
# Set on such a session once it has begun to write: from then on it runs in a transaction.
_WRITING = "skilltree.writing"


def reads_need_no_transaction(dialect_name: str) -> bool:
    """Whether a reading unit of work on this backend runs its reads without `BEGIN`/`COMMIT`.

    PostgreSQL at READ COMMITTED. Not SQLite, whose read transaction is one snapshot for all
    its statements (and costs no round trip), nor MariaDB, whose driver switches autocommit
    with a statement of its own (a round trip, which is what this saves)."""
    return dialect_name == "postgresql"


def reset_reads_without_transaction(engine: AsyncEngine) -> None:
    """Every connection goes back to the pool transactional, whatever its last unit of work
    did: the next one to check it out may write."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _transactional_again(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None and getattr(dbapi_connection, "autocommit", False):
            dbapi_connection.autocommit = False


@event.listens_for(UnitOfWorkSession, "after_begin")
def _reads_outside_a_transaction(session: Session, _transaction: Any, connection: Any) -> None:
    """The session took a connection: a reading unit of work's statements run without `BEGIN`
    until it writes (the driver begins a transaction lazily, before the first statement)."""
    if session.info.get(_READS_WITHOUT_TRANSACTION) and not session.info.get(_WRITING):
        _driver_connection_of(connection).autocommit = True


def _begin_writing(session: Session) -> None:
    """From the next statement on, the reading unit of work runs in a transaction."""
    if not session.info.get(_READS_WITHOUT_TRANSACTION) or session.info.get(_WRITING):
        return
    session.info[_WRITING] = True
    transaction = session.get_transaction()
    if transaction is None:
        return  # no connection yet: `_reads_outside_a_transaction` will leave it transactional
    for connection in transaction.connections:
        _driver_connection_of(connection).autocommit = False


def _driver_connection_of(connection: Any) -> Any:
    """The driver's adapted connection behind a SQLAlchemy connection (its `autocommit` flag
    is the driver's own: setting it sends nothing, and decides whether a statement begins a
    transaction)."""
    return connection.connection.dbapi_connection


# Set on the session of a reading unit of work on SQLite: the database whose write lock it
# takes, in turn, before it writes.
_WRITES_IN_TURN = "skilltree.writes_in_turn"
# Set once such a session holds that lock; the unit of work's end lets it go.
_HOLDS_WRITE_LOCK = "skilltree.holds_write_lock"


def _write_in_turn(session: Session) -> None:
    """A reading unit of work on SQLite is about to write: wait for the write lock in this
    process's line of writers, then end the read transaction and begin one that holds the
    lock. Written in the read transaction instead, the statement would take SQLite's lock
    outside the line: a writer whose turn came next would wait for that lock, while the reader,
    at its end, waited in the line behind that writer to write its last changes, each waiting
    for the other until SQLite's busy timeout failed the writer."""
    database: Database | None = session.info.get(_WRITES_IN_TURN)
    if database is None or session.info.get(_HOLDS_WRITE_LOCK):
        return
    await_(database._acquire_writer())
    session.info[_HOLDS_WRITE_LOCK] = True  # from here on, the unit of work's end releases it
    connection = session.connection()
    connection.exec_driver_sql("COMMIT")  # the read transaction: nothing written
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@event.listens_for(UnitOfWorkSession, "do_orm_execute")
def _writes_begin_a_transaction(state: ORMExecuteState) -> None:
    # Only a plain SELECT reads and nothing more; anything else (DML, a row lock, a textual
    # statement, whose effect cannot be told) may write or lock, so it gets a transaction.
    if state.is_select and getattr(state.statement, "_for_update_arg", None) is None:
        return
    _begin_writing(state.session)
    # On SQLite a textual SELECT only reads: it has no row locks, and its functions write
    # nothing.
    if not (isinstance(state.statement, TextClause) and _reads_only(state.statement.text)):
        _write_in_turn(state.session)


@event.listens_for(UnitOfWorkSession, "before_flush")
def _flushes_begin_a_transaction(session: Session, _context: Any, _instances: Any) -> None:
    _begin_writing(session)
    _write_in_turn(session)


def _reads_only(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


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
        poolclass=FairQueuePool.with_line_of(
            settings.pool_max_waiting, spare_idle_seconds=settings.pool_overflow_idle_seconds
        ),
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


def keeps_changes(error: BaseException | None) -> bool:
    """Whether a unit of work that ended with `error` keeps its changes: on success, and on
    a domain error that keeps them (a failed sign-in's audit row)."""
    return error is None or (isinstance(error, DomainError) and error.keeps_changes)


def _nothing_to_commit(session: AsyncSession) -> bool:
    """No statement began a transaction and no change waits to be flushed: committing would
    only cost the ORM's bookkeeping (a request answered from caches runs no statement), and
    closing the session ends it the same way."""
    if _has_changes(session):
        return False
    if not session.in_transaction():
        return True
    return bool(session.info.get(_READS_WITHOUT_TRANSACTION)) and not session.info.get(_WRITING)


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
        through_pgbouncer: bool = False,
        writers_engine: AsyncEngine | None = None,
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
        # SQLite's writers' own connection (`create_writers_engine`), disposed with this.
        self._writers_engine = writers_engine
        if engine.dialect.name == "sqlite":
            self._writers = _WriterQueue()
            if sessionmaker is None:
                immediate = (writers_engine or engine).execution_options(
                    **{BEGIN_OPTION: "BEGIN IMMEDIATE"}
                )
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
        # Not in tests whose sessions share one connection: its transaction is the test's. Not
        # through PgBouncer in transaction mode: asyncpg prepares a statement, then runs it, and
        # outside a transaction the two may reach different server connections.
        self._reads_without_transaction = (
            reads_need_no_transaction(engine.dialect.name)
            and sessionmaker is None
            and not through_pgbouncer
        )

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        engine = create_engine(settings)
        return cls(
            engine,
            replica=create_replica(settings, engine),
            through_pgbouncer=settings.pgbouncer,
            writers_engine=create_writers_engine(settings),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine the units of work connect through (tracing instruments each): the
        engine, and on SQLite the writers' own (`create_writers_engine`)."""
        writers = self._writers_engine
        return (self.engine,) if writers is None else (self.engine, writers)

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
        error: BaseException | None = None
        if queued:
            await self._acquire_writer()
        try:
            maker = self._writer_sessionmaker if queued else self.sessionmaker
            async with self._open(maker, from_replica=from_replica and not writes) as session:
                self._start(session, writes=writes)
                try:
                    yield session
                except BaseException as raised:
                    error = raised
                callbacks = await self._end(session, error, queued=queued)
        finally:
            if queued:
                self._release_writer()
        for callback in callbacks:
            await callback()
        if error is not None:
            raise error

    @asynccontextmanager
    async def unit_of_work_at_first_use(self) -> AsyncIterator[AsyncSession]:
        """`unit_of_work` for a block that often runs no statement: its session opens only
        when the block first uses it, and one never used is neither opened nor ended
        (decision 0072). Where that cannot be deferred (a SQLite writer waits for the write
        lock before it begins), a plain `unit_of_work`."""
        if not self.opens_at_first_use(writes=True, from_replica=False):
            async with self.unit_of_work() as session:
                yield session
            return
        deferred = DeferredSession(self, writes=True, when_opened=_nothing_to_register)
        error: BaseException | None = None
        try:
            yield deferred
        except BaseException as raised:
            error = raised
            raise
        finally:
            if deferred.opened:
                await deferred.end(error)

    def opens_at_first_use(self, *, writes: bool, from_replica: bool) -> bool:
        """Whether `deferred_unit_of_work` can serve these arguments: not a SQLite writer,
        which waits for the write lock before it begins, nor a read that may go to the
        replica, which asks whether the replica keeps up before it begins."""
        queued = writes and self._writers is not None
        return not queued and not (from_replica and not writes and self.replica is not None)

    def deferred_unit_of_work(
        self, *, writes: bool, when_opened: Callable[[DeferredSession], None]
    ) -> AsyncSession:
        """A unit of work that costs nothing until the session is first used (decision 0072).

        The session returned is not yet a session: its first use (a statement, `add`, `info`,
        anything the ORM session behind it does) opens it as `unit_of_work` opens one (the
        same hooks, the same reads without a transaction) and calls `when_opened` with it;
        whoever called this then ends it with `DeferredSession.end`. One never used is never
        opened, and there is nothing to end. Only where `opens_at_first_use` says so."""
        return DeferredSession(self, writes=writes, when_opened=when_opened)

    def _start(self, session: AsyncSession, *, writes: bool) -> None:
        """What every unit of work does as it opens, before its first statement."""
        if not writes and self._reads_without_transaction:
            session.info[_READS_WITHOUT_TRANSACTION] = True
        if not writes and self._late_writes:
            session.info[_WRITES_IN_TURN] = self
        for hook in self._unit_of_work_hooks:
            hook(session)

    async def _end(
        self, session: AsyncSession, error: BaseException | None, *, queued: bool
    ) -> list[Callable[[], Awaitable[None]]]:
        """Commit the unit of work `error` ended (None: it succeeded), or roll it back; the
        after-commit callbacks to run once the session is closed (none after a rollback)."""
        try:
            if _REHEARSING.get() or not keeps_changes(error):
                await session.rollback()
                session.info.pop(AFTER_COMMIT, None)
                return []
            if not queued and self._late_writes and _has_changes(session):
                await self._write_late(session)
            elif error is not None or not _nothing_to_commit(session):
                await session.commit()
        except BaseException:
            if error is None:  # the commit failed; an error's own rollback raises as it is
                await session.rollback()
            raise
        finally:
            if session.info.pop(_HOLDS_WRITE_LOCK, False):  # a reader that wrote (SQLite)
                self._release_writer()
        callbacks: list[Callable[[], Awaitable[None]]] = session.info.pop(AFTER_COMMIT, [])
        return callbacks

    def _open(
        self, maker: async_sessionmaker[AsyncSession], *, from_replica: bool
    ) -> AbstractAsyncContextManager[AsyncSession]:
        """A session of `maker`, or one reading the replica when asked for and usable."""
        if from_replica and self.replica is not None:
            return self._open_on_replica(maker)
        return maker()  # the session is its own context: one layer less on every request

    @asynccontextmanager
    async def _open_on_replica(
        self, maker: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        replica, replica_sessions = self.replica, self._replica_sessionmaker
        if replica and replica_sessions and await replica.usable():
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
        the write lock in turn, and write them in a transaction of their own (unless it took
        the lock already, at a write statement). `_end` releases the lock."""
        await session.run_sync(_write_in_turn)
        await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._writers_engine is not None:
            await self._writers_engine.dispose()
        if self.replica is not None:
            await self.replica.dispose()


def _nothing_to_register(_session: DeferredSession) -> None:
    """`unit_of_work_at_first_use` ends what it opened itself."""


class DeferredSession(AsyncSession):
    """An `AsyncSession` opened at its first use (`Database.deferred_unit_of_work`).

    Opening a session and closing it unused was a quarter of the CPU of a request that runs
    no statement (`GET /v1/me`, answered from the principal cache): building the ORM session,
    the unit-of-work hooks, closing it in a task and a greenlet. Until something reaches for
    the ORM session behind it, this object holds only what it needs to open it; every
    `AsyncSession` method, and `info`, reaches for it, so the first of them opens it.
    """

    def __init__(
        self, database: Database, *, writes: bool, when_opened: Callable[[DeferredSession], None]
    ) -> None:
        # AsyncSession.__init__ runs at the first use (`_open_now`), not here.
        self._database = database
        self._writes = writes
        self._when_opened: Callable[[DeferredSession], None] | None = when_opened

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute not set yet: before the first use, `sync_session` and
        # the others AsyncSession.__init__ sets.
        if self.__dict__.get("_when_opened") is None:
            raise AttributeError(name)
        self._open_now()
        return getattr(self, name)

    @property
    def opened(self) -> bool:
        return self._when_opened is None

    def _open_now(self) -> None:
        when_opened, self._when_opened = self._when_opened, None
        assert when_opened is not None
        AsyncSession.__init__(self, **self._database.sessionmaker.kw)
        self._database._start(self, writes=self._writes)
        when_opened(self)

    async def end(self, error: BaseException | None) -> None:
        """End the opened session's unit of work as `Database.unit_of_work` ends one whose
        block raised `error` (None: it succeeded): commit or roll back, close, then run the
        after-commit callbacks. Raises only what committing, rolling back or a callback
        raised: the caller lets `error` go on its way."""
        try:
            callbacks = await self._database._end(self, error, queued=False)
        finally:
            await self.__aexit__(None, None, None)  # closes the session
        for callback in callbacks:
            await callback()
