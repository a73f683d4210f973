"""PostgreSQL through PgBouncer in transaction mode: a slice of the real flows, many requests at
once over fewer server connections than the application's pool holds."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.accounts import register_and_verify, sign_in
from tests.support.databases import migrated_postgres_database
from tests.support.installation import served, settings_for
from tests.support.processes import free_port, require_program
from tests.support.progress import WEB, import_roadmap, mark

pytestmark = pytest.mark.postgres

SERVER_CONNECTIONS = 2  # far fewer than the app's pool: transactions must share them


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[int]:
    """PgBouncer in transaction mode on a free loopback port, in front of the test server."""
    program = require_program("pgbouncer", "pgbouncer")
    # Its own directory under /tmp: PgBouncer runs as postgres, who cannot enter pytest's.
    directory = Path(tempfile.mkdtemp(prefix="skilltree-pgbouncer-"))
    port = free_port()
    config = directory / "pgbouncer.ini"
    config.write_text(
        "[databases]\n* = host=127.0.0.1 port=5432\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'users.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 100\n"
        f"logfile = {directory / 'pgbouncer.log'}\n",
        encoding="utf-8",
    )
    (directory / "users.txt").write_text('"postgres" ""\n', encoding="utf-8")
    for path in (directory, config, directory / "users.txt"):
        shutil.chown(path, user="postgres")
    # PgBouncer refuses to run as root.
    process = subprocess.Popen(["runuser", "-u", "postgres", "--", program, str(config)])
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if time.monotonic() > deadline or process.poll() is not None:
                log = directory / "pgbouncer.log"
                pytest.fail(f"pgbouncer did not start: {log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
async def through_pgbouncer(pgbouncer: int, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database, migrated directly, and its URL through PgBouncer."""
    async with migrated_postgres_database() as url:
        yield make_url(url).set(port=pgbouncer).render_as_string(hide_password=False)


async def test_the_service_works_through_pgbouncer_in_transaction_mode(
    through_pgbouncer: str, tmp_path: Path
) -> None:
    settings = settings_for(through_pgbouncer, tmp_path)
    settings = settings.model_copy(
        update={"database": DatabaseSettings(url=through_pgbouncer, pgbouncer=True, pool_size=8)}
    )
    async with served(settings) as client:
        await register_and_verify(
            client, settings.mail.outbox_dir, email="ada@example.org", name="Ada"
        )
        ada = await sign_in(client, email="ada@example.org")
        await import_roadmap(ada, WEB, visibility="public")
        marks = await asyncio.gather(
            *(mark(ada, topic, "done") for topic in ("etags", "status-codes", "indexes"))
        )
        # Many statements of the same shape at once, each in a transaction that may land on
        # either server connection: a cached prepared statement would be missing (or another).
        reads = await asyncio.gather(*(client.get("/v1/roadmaps/web/tree") for _ in range(30)))
        progress = await ada.client.get("/v1/me/progress/web")

    assert [response.status_code for response in marks] == [200, 200, 200]
    assert {response.status_code for response in reads} == {200}
    assert progress.json()["summary"]["counts"]["done"] == 3


async def test_the_fair_pool_serves_waiters_in_order_through_pgbouncer(
    through_pgbouncer: str,
) -> None:
    """One application connection through PgBouncer: requests that wait for it are served in
    the order they asked, and one arriving as it comes back waits behind them (decision 0009).
    Each request's transaction holds a PgBouncer server connection while it runs; between
    transactions the client connection keeps none, so the pool's order is the only order."""
    settings = DatabaseSettings(
        url=through_pgbouncer, pgbouncer=True, pool_size=1, max_overflow=0, pool_timeout_seconds=5
    )
    engine = create_engine(settings)
    served: list[str] = []

    async def request(name: str) -> None:
        async with engine.begin() as connection:
            # A statement of the same shape each time: prepared under a fresh name per request.
            await connection.execute(text("SELECT count(*) FROM users WHERE id > :id"), {"id": 0})
            served.append(name)

    async def until_waiting(count: int) -> None:
        for _ in range(400):
            if engine.pool.waiting() == count:  # type: ignore[attr-defined]
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"never saw {count} waiting requests")

    try:
        holder = await engine.connect()
        await holder.execute(text("SELECT 1"))  # inside a transaction: a server connection held
        waiters = []
        for position in range(5):
            waiters.append(asyncio.create_task(request(f"waiter {position}")))
            await until_waiting(position + 1)

        await holder.close()
        await request("newcomer")  # asks in the instant the connection comes back
        await asyncio.gather(*waiters)
    finally:
        await engine.dispose()

    assert served == [f"waiter {position}" for position in range(5)] + ["newcomer"]
