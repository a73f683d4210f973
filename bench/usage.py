"""Where a run's CPU went, process by process, read from /proc (everything runs on this machine).

`CoreMeter` reads every process's user + system time before and after a run and sorts the
difference: each of the server's workers, its supervisor (uvicorn's parent of several workers
and multiprocessing's resource tracker), PostgreSQL, Redis, the load generator (wrk), this
benchmark's own process, and the rest of the machine (`other`: another user's work).

Two things a sum of the live processes misses, which made the two-worker figures wrong:

- a process that ends during the run takes its CPU time with it. Its parent gets it when it
  reaps it (`cutime`/`cstime` in /proc/PID/stat), so the postmaster's reaped time is the CPU of
  the PostgreSQL backends that ended (a pool closing its overflow connections ends one several
  times a second), and this process's children's time (`RUSAGE_CHILDREN`) is wrk's;
- which backends serve the run's database: those `pg_stat_activity` lists for it before or after
  the run. A backend that both began and ended within the run is only in `postgresql ended`
  (of any database: another user's test run ends backends too), and the run's
  `pg_stat_database.sessions` says how many the run's database began.

Other databases on the same server (other people's tests) count under `postgresql other`.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.stage import ADMIN_URL

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessTimes:
    """One process's times so far, in seconds: its own, and its reaped children's."""

    name: str  # /proc/PID/comm
    parent: int
    own: float
    reaped: float


def read_stat(text: str) -> ProcessTimes:
    """The times in one /proc/PID/stat line. The name sits in parentheses and may hold spaces
    and parentheses itself, so the fields are counted from its last ")"."""
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    # From the state (field 3): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ProcessTimes(name, int(fields[1]), (utime + stime) / TICKS, (cutime + cstime) / TICKS)


def processes() -> dict[int, ProcessTimes]:
    """Every process on the machine, now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found[int(entry.name)] = read_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # it ended since the listing
            continue
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent on anything but idling, since boot
    (/proc/stat: user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


@dataclass(frozen=True)
class Reading:
    """What a `CoreMeter` reads at each end of a run."""

    processes: dict[int, ProcessTimes]
    machine: float
    children: float  # this process's reaped children (wrk), user + system
    own: float  # this process
    backends: frozenset[int]  # the run's database's PostgreSQL backends
    sessions: int  # pg_stat_database.sessions of the run's database (0 without one)


def read_now(database: str | None) -> Reading:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    backends, sessions = _database_activity(database) if database else (frozenset(), 0)
    return Reading(
        processes(),
        machine_busy_seconds(),
        children.ru_utime + children.ru_stime,
        me.ru_utime + me.ru_stime,
        backends,
        sessions,
    )


def _database_activity(database: str) -> tuple[frozenset[int], int]:
    async def query() -> tuple[frozenset[int], int]:
        connection = await asyncpg.connect(ADMIN_URL)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", database
            )
            sessions = await connection.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = $1", database
            )
        finally:
            await connection.close()
        return frozenset(int(row["pid"]) for row in rows), int(sessions or 0)

    return asyncio.run(query())


def cores_used(
    before: Reading, after: Reading, *, workers: Iterable[int], supervisors: Iterable[int] = ()
) -> dict[str, float]:
    """CPU seconds by where they went between two readings (see the module's docstring).
    Keys: `worker 1`, `worker 2`, … and `worker` (their sum), `supervisor`, `postgresql` (the
    run's database's backends), `postgresql ended`, `postgresql other`, `redis`, `wrk`,
    `bench`, `other` (the rest of the machine's busy time) and `machine`; `pg sessions` is the
    number of connections the run's database began."""

    def used(pid: int) -> float:
        start, end = before.processes.get(pid), after.processes.get(pid)
        if end is None:  # it ended: what it used is in its parent's reaped time
            return 0.0
        return end.own - (start.own if start is not None and start.name == end.name else 0.0)

    def reaped(pid: int) -> float:
        start, end = before.processes.get(pid), after.processes.get(pid)
        if start is None or end is None:
            return 0.0
        return end.reaped - start.reaped

    worker_pids = list(workers)
    cpu: dict[str, float] = {}
    for index, pid in enumerate(worker_pids, start=1):
        cpu[f"worker {index}"] = used(pid)
    cpu["worker"] = sum(cpu[f"worker {i}"] for i in range(1, len(worker_pids) + 1))
    # A worker that ended (a supervisor replaced it) is in its supervisor's reaped time.
    cpu["supervisor"] = sum(used(pid) + reaped(pid) for pid in supervisors)

    postgres = {pid for pid, p in after.processes.items() if p.name == "postgres"}
    postmasters = {pid for pid in postgres if after.processes[pid].parent not in postgres}
    backends = (before.backends | after.backends) & postgres
    cpu["postgresql"] = sum(used(pid) for pid in backends)
    cpu["postgresql ended"] = sum(reaped(pid) for pid in postmasters)
    cpu["postgresql other"] = sum(used(pid) for pid in postgres - backends)
    cpu["redis"] = sum(
        used(pid) for pid, p in after.processes.items() if p.name.startswith("redis-server")
    )
    cpu["wrk"] = after.children - before.children
    cpu["bench"] = after.own - before.own
    cpu["machine"] = after.machine - before.machine
    accounted = ("worker", "supervisor", "postgresql", "postgresql ended", "postgresql other",
                 "redis", "wrk", "bench")  # fmt: skip
    # The machine's busy time less everything named: another user's work, the kernel's.
    cpu["other"] = cpu["machine"] - sum(cpu[key] for key in accounted)
    cpu["pg sessions"] = float(after.sessions - before.sessions)
    return cpu


class CoreMeter:
    """Reads at construction; `used()` reads again and says where the CPU went meanwhile."""

    def __init__(self, database: str | None, *, workers: list[int], supervisors: list[int]) -> None:
        self.database = database
        self.workers = workers
        self.supervisors = supervisors
        self.before = read_now(database)

    def used(self) -> dict[str, float]:
        return cores_used(
            self.before,
            read_now(self.database),
            workers=self.workers,
            supervisors=self.supervisors,
        )


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages, as every benchmark prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
