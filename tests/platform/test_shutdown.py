"""SIGTERM to a loaded server, worker or scheduler: readiness turns false at once, and nothing
that was in flight is lost. Real `skilltree` processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text

from bench.crash_tasks import CREATE_APPLIED
from skilltree.platform import events
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import Database
from tests.support.accounts import bearer_headers, register_and_verify, sign_in
from tests.support.databases import migrated_postgres_database
from tests.support.processes import (
    SKILLTREE,
    base_env,
    free_port,
    migrate,
    running,
    serve_command,
    wait_until_ready,
)
from tests.support.redis import REDIS_URL, isolated_prefix
from tests.support.tcp_proxy import tcp_proxy

REDIS_PORT = make_url(REDIS_URL).port or 6379

DRAIN_SECONDS = 1.5
SLOW_BODY_SECONDS = 3.0  # longer than the drain: these are in flight when the server stops


async def _slow_body(email: str) -> AsyncIterator[bytes]:
    yield f'{{"email": "{email}", "display_name": "Slow", '.encode()
    await asyncio.sleep(SLOW_BODY_SECONDS)
    yield b'"password": "correct horse battery staple 42"}'


@pytest.mark.postgres
async def test_sigterm_to_a_loaded_server_fails_no_request_and_drains_readiness_first(
    tmp_path: Path,
) -> None:
    async with migrated_postgres_database() as url:
        await _sigterm_to_a_loaded_server(url, tmp_path)


async def _sigterm_to_a_loaded_server(url: str, tmp_path: Path) -> None:
    env = base_env(
        url,
        SKILLTREE_HTTP_DRAIN_SECONDS=str(DRAIN_SECONDS),
        SKILLTREE_MAIL_OUTBOX_DIR=str(tmp_path / "mail"),
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(serve_command(port), env, tmp_path / "serve.log") as server:
        await asyncio.to_thread(wait_until_ready, base, server)
        in_rotation = asyncio.Event()
        in_rotation.set()
        statuses: list[int] = []
        failures: list[str] = []
        readiness_dropped_at: list[float] = []

        async def reader(client: httpx.AsyncClient) -> None:
            # A client behind a balancer: it sends while the instance is in rotation.
            while in_rotation.is_set():
                try:
                    statuses.append((await client.get("/v1/roadmaps")).status_code)
                except httpx.TransportError as error:
                    failures.append(repr(error))

        async def slow_sign_up(client: httpx.AsyncClient, n: int) -> None:
            try:
                response = await client.post(
                    "/v1/auth/register",
                    content=_slow_body(f"slow{n}@example.org"),
                    headers={"content-type": "application/json"},
                )
                statuses.append(response.status_code)
            except httpx.TransportError as error:
                failures.append(repr(error))

        async def balancer(client: httpx.AsyncClient) -> None:
            while True:
                if (await client.get("/readyz")).status_code == 503:
                    readiness_dropped_at.append(time.monotonic())
                    in_rotation.clear()
                    return
                await asyncio.sleep(0.05)

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            load = [asyncio.create_task(reader(client)) for _ in range(8)]
            slow = [asyncio.create_task(slow_sign_up(client, n)) for n in range(4)]
            watch = asyncio.create_task(balancer(client))
            while len(statuses) < 20 and not failures:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            served_before = len(statuses)
            signalled_at = time.monotonic()
            server.send_signal(signal.SIGTERM)
            await asyncio.gather(*load, *slow, watch)
        exit_code = await asyncio.to_thread(server.wait, 40)

    assert failures == []
    assert served_before > 0
    assert readiness_dropped_at[0] - signalled_at < DRAIN_SECONDS
    assert set(statuses) == {200, 202}
    assert statuses.count(202) == 4  # every slow request, still arriving at SIGTERM, answered
    # Shut down cleanly, uvicorn re-raises the signal it caught: the status says "stopped by
    # SIGTERM", as supervisors expect.
    assert exit_code == -signal.SIGTERM


@pytest.mark.postgres
async def test_sigterm_to_a_loaded_worker_finishes_its_tasks_and_loses_none(
    tmp_path: Path,
) -> None:
    async with migrated_postgres_database() as url:
        await _sigterm_to_a_loaded_worker(url, tmp_path)


async def _sigterm_to_a_loaded_worker(url: str, tmp_path: Path) -> None:
    count = 16
    database = Database.from_settings(DatabaseSettings(url=url))
    async with database.engine.begin() as connection:
        await connection.execute(text(CREATE_APPLIED))
    async with database.unit_of_work() as session:
        for n in range(count):
            events.emit(session, "bench.tick", at=datetime.now(UTC), data={"n": n})
    env = base_env(
        url,
        BENCH_WORK_SECONDS="0.4",
        SKILLTREE_QUEUE_CONCURRENCY="4",
        SKILLTREE_QUEUE_POLL_INTERVAL_SECONDS="0.05",
        # A task abandoned by the stopping worker would wait out this lease: far longer than
        # the test, so a lost one shows as a missing row.
        SKILLTREE_QUEUE_LEASE_SECONDS="600",
    )
    worker = [
        sys.executable,
        "-c",
        "import bench.crash_tasks, skilltree.cli as cli; cli.main()",
        "worker",
    ]
    try:
        with running(worker, env, tmp_path / "worker-1.log") as first:
            await _until(lambda: _applied(database), at_least=4, seconds=90)
            first.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(first.wait, 30)
            applied_by_first = await _applied(database)
        with running(worker, env, tmp_path / "worker-2.log") as second:
            await _until(lambda: _applied(database), at_least=count, seconds=120)
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 30)
        async with database.engine.connect() as connection:
            rows = (await connection.execute(text("SELECT event_id FROM bench_applied"))).all()
            dead = await connection.scalar(text("SELECT count(*) FROM dead_letters"))
    finally:
        await database.dispose()

    assert exit_code == 0
    assert applied_by_first < count  # it was stopped with work left, not after it
    assert len(rows) == len({row[0] for row in rows}) == count
    assert dead == 0


async def test_sigterm_stops_the_scheduler_between_ticks(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'scheduler.db'}", SKILLTREE_LOG_LEVEL="INFO")
    migrate(env["SKILLTREE_DATABASE_URL"])
    log = tmp_path / "scheduler.log"
    with running([str(SKILLTREE), "scheduler"], env, log) as scheduler:
        await _until(lambda: _claimed_ticks(log), at_least=1, seconds=90)
        scheduler.send_signal(signal.SIGTERM)
        started = time.monotonic()
        exit_code = await asyncio.to_thread(scheduler.wait, 30)
        stopped_within = time.monotonic() - started

    lines = log.read_text()
    assert exit_code == 0
    assert stopped_within < 5  # the poll interval (15 s) is not waited out
    assert "scheduler.stopped" in lines
    assert "scheduler.tick_failed" not in lines


async def _claimed_ticks(log: Path) -> int:
    text = await asyncio.to_thread(log.read_text)
    return text.count("scheduler.tick_claimed")


async def _applied(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM bench_applied")) or 0)


async def _until(measure: Callable[[], Awaitable[int]], *, at_least: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await measure() >= at_least:
            return
        # Another process's progress: nothing to wait on across processes but polling.
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} after {seconds} s")


# --- whatever Redis does --------------------------------------------------------------------------

# How long past the drain window a stop may take: Redis's timeout (1 s here) and the lifespan
# closing what it opened, never a wait on a Redis that does not answer.
STOP_MARGIN_SECONDS = 2.0


@pytest.mark.redis
@pytest.mark.parametrize("redis_state", ["restarted", "hung"])
async def test_sigterm_stops_the_server_within_the_drain_window_whatever_redis_does(
    tmp_path: Path, redis_state: str
) -> None:
    """Restarted: every connection to Redis dropped (the broadcast reader fails and reconnects).
    Hung: Redis accepts and never answers, while a sign-out waits to announce itself on it."""
    async with isolated_prefix() as prefix, tcp_proxy("127.0.0.1", REDIS_PORT) as proxy:
        env = base_env(
            f"sqlite+aiosqlite:///{tmp_path / 'skilltree.db'}",
            SKILLTREE_REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
            SKILLTREE_REDIS_KEY_PREFIX=prefix,
            SKILLTREE_REDIS_TIMEOUT_SECONDS="1",
            SKILLTREE_RATE_LIMIT_ENABLED="false",  # sign-out is to reach the broadcast
            SKILLTREE_HTTP_DRAIN_SECONDS=str(DRAIN_SECONDS),
            SKILLTREE_MAIL_OUTBOX_DIR=str(tmp_path / "mail"),
            SKILLTREE_LOG_LEVEL="INFO",
        )
        migrate(env["SKILLTREE_DATABASE_URL"])
        port = free_port()
        log = tmp_path / "serve.log"
        with running(serve_command(port), env, log) as server:
            base = f"http://127.0.0.1:{port}"
            await asyncio.to_thread(wait_until_ready, base, server)
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                await register_and_verify(client, tmp_path / "mail")
                bearer = await bearer_headers(await sign_in(client))
                in_flight = None
                if redis_state == "restarted":
                    await proxy.stop()
                    await asyncio.sleep(1.5)  # the reader fails, and fails to reconnect
                    await proxy.start()
                    await asyncio.sleep(1.5)
                else:
                    client.cookies.clear()  # the sign-out by token: its family is in the database
                    proxy.freeze()
                    in_flight = asyncio.create_task(client.post("/v1/auth/logout", headers=bearer))
                    await asyncio.sleep(0.2)
                signalled_at = time.monotonic()
                server.send_signal(signal.SIGTERM)
                exit_code = await asyncio.to_thread(server.wait, 60)
                stopped_within = time.monotonic() - signalled_at
                if in_flight is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        await in_flight
                proxy.thaw()

    lines = log.read_text()
    assert exit_code == -signal.SIGTERM, lines[-3000:]
    assert stopped_within < DRAIN_SECONDS + STOP_MARGIN_SECONDS, lines[-3000:]
    if redis_state == "restarted":
        assert "broadcast.reader_failed" in lines
