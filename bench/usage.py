"""CPU time PostgreSQL spends on the run's database, read from /proc (PostgreSQL runs here).

A server process per connection: the backends serving the run's database are those
`pg_stat_activity` lists for it, and their user + system time is in /proc like any process's.
Other databases on the same server (other people's tests) are left out.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from bench.servers import cpu_seconds
from bench.stage import ADMIN_URL


def postgres_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL process on this machine."""
    used = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:  # the process ended since the listing
            continue
        used[int(entry.name)] = cpu_seconds(int(entry.name))
    return used


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent on anything but idling, since boot
    (/proc/stat: user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def backend_pids(database: str) -> list[int]:
    async def query() -> list[int]:
        connection = await asyncpg.connect(ADMIN_URL)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", database
            )
        finally:
            await connection.close()
        return [int(row["pid"]) for row in rows]

    return asyncio.run(query())


class PostgresUsage:
    """CPU seconds the backends of `database` use from now until `used()` is called."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.before = postgres_cpu()

    def used(self) -> float:
        after = postgres_cpu()
        return sum(
            after[pid] - self.before.get(pid, 0.0)
            for pid in backend_pids(self.database)
            if pid in after
        )


def postgres_usage(database: str) -> PostgresUsage:
    return PostgresUsage(database)
