"""Reads from a real PostgreSQL streaming replica: reading requests go to it, a client reads its
own writes from the primary, and a replica that lags too far or is down is not read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import func, select, update

from skilltree.accounts.models import BrowserSession
from skilltree.app import create_app
from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings, Settings
from skilltree.platform.db import Database, create_engine
from skilltree.platform.http.read_your_writes import COOKIE
from tests.support.accounts import Browser, register_and_verify, sign_in
from tests.support.installation import settings_for
from tests.support.processes import free_port
from tests.support.progress import WEB, import_roadmap, mark
from tests.support.replica import StreamingPair, streaming_pair

PROGRESS = "/v1/me/progress/web"


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    with streaming_pair() as built:
        yield built


@dataclass
class Installation:
    settings: Settings
    pair: StreamingPair
    transport: httpx.ASGITransport

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url="http://test")


@asynccontextmanager
async def installation(
    pair: StreamingPair,
    tmp_path: Path,
    *,
    max_lag: float = 60.0,
    check_seconds: float = 0.2,
    replica_port: int | None = None,
) -> AsyncIterator[Installation]:
    """The service on a fresh database of the pair, reading from its replica (or from a replica
    at `replica_port`), with the cache on."""
    async with pair.database() as name:
        primary_url = pair.url(pair.primary_port, name)
        engine = create_engine(DatabaseSettings(url=primary_url))
        await migrations.upgrade(engine)
        await engine.dispose()
        settings = settings_for(primary_url, tmp_path)
        database = DatabaseSettings(
            url=primary_url,
            replica_url=pair.url(replica_port or pair.replica_port, name),
            replica_max_lag_seconds=max_lag,
            replica_check_seconds=check_seconds,
        )
        settings = settings.model_copy(update={"database": database})
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            yield Installation(settings, pair, httpx.ASGITransport(app=application))


async def learner(site: Installation) -> Browser:
    client = site.client()
    await register_and_verify(client, site.settings.mail.outbox_dir, email="ada@example.org")
    ada = await sign_in(client, email="ada@example.org")
    await import_roadmap(ada, WEB, visibility="public")
    return ada


def without_write_marker(person: Browser, site: Installation) -> httpx.AsyncClient:
    """The same person's session from a client that has not written (another tab, an API
    client): nothing sends its reads to the primary."""
    other = site.client()
    for cookie in person.client.cookies.jar:
        if cookie.name != COOKIE:
            other.cookies.set(cookie.name, cookie.value or "")
    return other


async def done_count(client: httpx.AsyncClient) -> int:
    response = await client.get(PROGRESS)
    assert response.status_code == 200, response.text
    count: int = response.json()["summary"]["counts"]["done"]
    return count


async def test_reads_go_to_the_replica_and_a_writer_reads_its_own_writes(
    pair: StreamingPair, tmp_path: Path
) -> None:
    async with installation(pair, tmp_path) as site:
        ada = await learner(site)
        await pair.until_replayed()
        anonymous = site.client()
        assert (await anonymous.get("/v1/roadmaps/web/tree")).status_code == 200

        await pair.pause_replay()
        try:
            assert (await mark(ada, "etags", "done")).status_code == 200
            # Ada's next read is hers: the primary, although the replica does not have it yet.
            assert COOKIE in ada.client.cookies
            assert await done_count(ada.client) == 1
            # The same session from a client that did not write reads the (paused) replica. Its
            # request slides the session's expiry: that write goes to the primary, not a 500.
            other_tab = without_write_marker(ada, site)
            assert await done_count(other_tab) == 0
            # What the replica computed is cached apart: Ada still reads her own write.
            assert await done_count(ada.client) == 1
        finally:
            await pair.resume_replay()
        await pair.until_replayed()


async def test_a_replica_further_behind_than_the_limit_is_not_read(
    pair: StreamingPair, tmp_path: Path
) -> None:
    async with installation(pair, tmp_path, max_lag=1.0) as site:
        ada = await learner(site)
        await pair.until_replayed()
        other_tab = without_write_marker(ada, site)
        await pair.pause_replay()
        try:
            assert (await mark(ada, "etags", "done")).status_code == 200
            assert await done_count(other_tab) == 0  # behind, by less than a second so far
            await asyncio.sleep(1.5)
            assert await done_count(other_tab) == 1  # too far behind: the primary answers
            assert REGISTRY.get_sample_value("skilltree_db_replica_in_use") == 0
            assert (REGISTRY.get_sample_value("skilltree_db_replica_lag_seconds") or 0) > 1
        finally:
            await pair.resume_replay()
        await pair.until_replayed()


@pytest.mark.parametrize(
    "check_seconds",
    [
        pytest.param(0.2, id="noticed-by-the-lag-check"),
        # No check before the reads below: the unit of work finds it cannot open a connection.
        pytest.param(60.0, id="noticed-by-the-request"),
    ],
)
async def test_reads_go_to_the_primary_while_the_replica_is_down(
    pair: StreamingPair, tmp_path: Path, check_seconds: float
) -> None:
    async with installation(pair, tmp_path, check_seconds=check_seconds) as site:
        ada = await learner(site)
        await pair.until_replayed()
        other_tab = without_write_marker(ada, site)
        assert await done_count(other_tab) == 0
        assert (await mark(ada, "etags", "done")).status_code == 200
        pair.stop("replica")
        await asyncio.sleep(0.3)  # a lag check is due (with the short interval)
        try:
            # The pooled replica connection is dead: the unit of work notices as it opens.
            assert await done_count(other_tab) == 1
            assert (await other_tab.get("/v1/roadmaps/web/tree")).status_code == 200
            assert REGISTRY.get_sample_value("skilltree_db_replica_lag_seconds") == -1
        finally:
            pair.start("replica", pair.replica_port)
        await pair.until_replayed()


async def test_a_replica_that_never_answered_is_not_read(
    pair: StreamingPair, tmp_path: Path
) -> None:
    async with installation(pair, tmp_path, replica_port=free_port()) as site:
        ada = await learner(site)
        other_tab = without_write_marker(ada, site)
        assert await done_count(other_tab) == 0
        assert (await other_tab.get("/v1/roadmaps/web/tree")).status_code == 200


async def test_a_reading_unit_of_work_reads_the_replica_until_it_writes(
    pair: StreamingPair, tmp_path: Path
) -> None:
    async with pair.database() as name:
        primary_url = pair.url(pair.primary_port, name)
        settings = DatabaseSettings(url=primary_url, replica_url=pair.url(pair.replica_port, name))
        database = Database.from_settings(settings)
        await migrations.upgrade(database.engine)
        await pair.until_replayed()
        in_recovery = select(func.pg_is_in_recovery())
        try:
            async with database.unit_of_work(writes=False, from_replica=True) as session:
                assert (await session.execute(in_recovery)).scalar_one() is True
                await session.execute(update(BrowserSession).values(user_agent="x"))
                assert (await session.execute(in_recovery)).scalar_one() is False
            async with database.unit_of_work(writes=False) as session:
                assert (await session.execute(in_recovery)).scalar_one() is False
            async with database.unit_of_work(from_replica=True) as session:  # a writer
                assert (await session.execute(in_recovery)).scalar_one() is False
        finally:
            await database.dispose()


def test_a_replica_needs_a_postgresql_primary_and_url() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL primary"):
        DatabaseSettings(replica_url="postgresql://replica/skilltree")
    with pytest.raises(ValidationError, match="postgresql:// URL"):
        DatabaseSettings(url="postgresql://primary/skilltree", replica_url="mysql://r/s")
    settings = DatabaseSettings(
        url="postgresql://primary/skilltree", replica_url="postgres://replica/skilltree"
    )
    assert settings.replica_url == "postgresql+asyncpg://replica/skilltree"
