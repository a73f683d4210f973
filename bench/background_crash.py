"""Kill -9 workers and relays under load; count lost and doubly-applied work.

    .venv/bin/python bench/background_crash.py [--events 300] [--seconds 150] [--database URL]
                                               [--broker database|rabbitmq]

Emits N domain events through the transactional outbox, runs two workers (without relays) and
one relay as separate `skilltree` processes, and kills a random one of them with SIGKILL every
5–10 s (a process needs a few seconds to start), starting a replacement each time. When every
event has been applied (or time is up) it prints how many events were lost and how many were
applied more than once. Expected: 0 and 0. With `--broker rabbitmq` the relay publishes to a
throwaway quorum queue on SKILLTREE_QUEUE_RABBITMQ_URL (default: the local server), deleted at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skilltree.models  # noqa: E402, F401
from bench.crash_tasks import CREATE_APPLIED  # noqa: E402
from skilltree.platform import events, migrations  # noqa: E402
from skilltree.platform.config import DatabaseSettings  # noqa: E402
from skilltree.platform.db import Database  # noqa: E402

LAUNCH = "import bench.crash_tasks, skilltree.cli as cli; cli.main()"


def spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    args = ["worker", "--no-relay"] if role == "worker" else ["relay"]
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def emit_events(database: Database, count: int) -> None:
    for start in range(0, count, 50):
        async with database.unit_of_work() as session:
            for n in range(start, min(start + 50, count)):
                events.emit(session, "bench.tick", at=datetime.now(UTC), data={"n": n})


async def applied(database: Database) -> tuple[int, int]:
    async with database.engine.connect() as connection:
        total = await connection.scalar(text("SELECT count(*) FROM bench_applied"))
        distinct = await connection.scalar(
            text("SELECT count(DISTINCT event_id) FROM bench_applied")
        )
    return int(total or 0), int(distinct or 0)


async def delete_queue(name: str) -> None:
    """The quorum queue is durable: without this it would outlive the run."""
    url = os.environ.get("SKILLTREE_QUEUE_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)
        await channel.exchange_delete(name)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--broker", choices=["database", "rabbitmq"], default="database")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="skilltree-crash-"))
    url = options.database or f"sqlite+aiosqlite:///{workdir}/crash.db"
    database = Database.from_settings(DatabaseSettings(url=url))
    await migrations.upgrade(database.engine)
    async with database.engine.begin() as connection:
        await connection.execute(text(CREATE_APPLIED))
        await connection.execute(text("DELETE FROM bench_applied"))
    await emit_events(database, options.events)

    env = {
        **os.environ,
        "SKILLTREE_DATABASE_URL": url,
        "SKILLTREE_QUEUE_LEASE_SECONDS": "2",
        "SKILLTREE_QUEUE_POLL_INTERVAL_SECONDS": "0.05",
        "SKILLTREE_QUEUE_RELAY_BATCH_SIZE": "25",
        "SKILLTREE_LOG_LEVEL": "WARNING",
        "SKILLTREE_QUEUE_BROKER": options.broker,
        "SKILLTREE_QUEUE_NAME": f"skilltree-crash-{workdir.name}",
    }
    rng = random.Random(7)
    processes = {"worker-1": spawn("worker", env), "worker-2": spawn("worker", env)}
    processes["relay"] = spawn("relay", env)
    kills = {"worker": 0, "relay": 0}
    started = time.monotonic()
    try:
        while time.monotonic() - started < options.seconds:
            await asyncio.sleep(rng.uniform(5.0, 10.0))
            _total, distinct = await applied(database)
            if distinct >= options.events:
                break
            victim = rng.choice(sorted(processes))
            processes[victim].send_signal(signal.SIGKILL)
            processes[victim].wait()
            role = "relay" if victim == "relay" else "worker"
            kills[role] += 1
            processes[victim] = spawn(role, env)
        # Let the survivors finish what the last kill left behind (leases must lapse first).
        deadline = time.monotonic() + 90
        # Polling another process's progress: there is no event to wait on across processes.
        while (await applied(database))[1] < options.events and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(timeout=30)
    total, distinct = await applied(database)
    await database.dispose()
    if options.broker == "rabbitmq":
        await delete_queue(env["SKILLTREE_QUEUE_NAME"])
    elapsed = time.monotonic() - started
    print(f"database: {url.split(':')[0]}, broker: {options.broker}")
    print(f"events emitted: {options.events}")
    print(f"kill -9: {kills['worker']} workers, {kills['relay']} relays in {elapsed:.1f} s")
    print(f"applied: {distinct} distinct, {total} applications")
    print(f"lost: {options.events - distinct}")
    print(f"applied twice or more: {total - distinct}")
    return 0 if distinct == options.events and total == distinct else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
