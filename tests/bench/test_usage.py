"""The benchmark says where a run's cores went: each worker, PostgreSQL (including backends
that ended during the run), Redis, wrk and the rest. Wrong, it blamed the wrong process for
two workers not scaling: it took multiprocessing's resource tracker for the first worker and
never saw the PostgreSQL backends a pool opened and closed during the run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.servers import app_processes, cpu_seconds
from bench.usage import TICKS, ProcessTimes, Reading, cores_used, processes, read_stat

TRACKER = "python -B -c from multiprocessing.resource_tracker import main;main(6)"
WORKER = "python -B -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=7)"


def test_the_resource_tracker_of_a_supervisor_is_not_a_worker() -> None:
    children = {101: TRACKER, 103: f"{WORKER} --multiprocessing-fork", 102: WORKER}

    assert app_processes(children) == [102, 103]


def test_a_process_name_with_spaces_and_parentheses_is_read() -> None:
    fields = ["S", "7", *["0"] * 9, "250", "50", "30", "20"] + ["0"] * 30
    stat = f"42 (redis-server (x) 1) {' '.join(fields)}"

    times = read_stat(stat)

    assert times.name == "redis-server (x) 1"
    assert times.parent == 7
    assert times.own == 300 / TICKS
    assert times.reaped == 50 / TICKS


def reading(
    processes: dict[int, ProcessTimes],
    *,
    machine: float,
    children: float = 0.0,
    backends: frozenset[int] = frozenset(),
    sessions: int = 0,
) -> Reading:
    return Reading(processes, machine, children, 0.0, backends, sessions)


def p(name: str, own: float, *, parent: int = 1, reaped: float = 0.0) -> ProcessTimes:
    return ProcessTimes(name, parent, own, reaped)


def test_each_process_is_counted_where_it_belongs() -> None:
    before = reading(
        {
            10: p("uvicorn", 1.0),
            11: p("python", 2.0, parent=10),  # the resource tracker
            12: p("python", 5.0, parent=10),
            13: p("python", 6.0, parent=10),
            20: p("postgres", 3.0, reaped=10.0),  # the postmaster
            21: p("postgres", 1.0, parent=20),  # a backend of the run's database
            22: p("postgres", 1.0, parent=20),  # another database's
            30: p("redis-server", 4.0),
        },
        machine=100.0,
        children=7.0,
        backends=frozenset({21}),
        sessions=40,
    )
    after = reading(
        {
            10: p("uvicorn", 1.1),
            11: p("python", 2.0, parent=10),
            12: p("python", 5.9, parent=10),
            13: p("python", 6.7, parent=10),
            20: p("postgres", 3.0, reaped=10.5),  # reaped backends that used 0.5 s
            21: p("postgres", 1.2, parent=20),
            22: p("postgres", 1.1, parent=20),
            23: p("postgres", 0.1, parent=20),  # a backend of the run's database, begun during it
            30: p("redis-server", 4.05),
        },
        machine=104.0,
        children=7.3,
        backends=frozenset({21, 23}),
        sessions=52,
    )

    cpu = cores_used(before, after, workers=[12, 13], supervisors=[10, 11])

    assert cpu["worker 1"] == pytest.approx(0.9)
    assert cpu["worker 2"] == pytest.approx(0.7)
    assert cpu["worker"] == pytest.approx(1.6)
    assert cpu["supervisor"] == pytest.approx(0.1)
    assert cpu["postgresql"] == pytest.approx(0.3)
    assert cpu["postgresql ended"] == pytest.approx(0.5)
    assert cpu["postgresql other"] == pytest.approx(0.1)
    assert cpu["redis"] == pytest.approx(0.05)
    assert cpu["wrk"] == pytest.approx(0.3)
    assert cpu["machine"] == pytest.approx(4.0)
    assert cpu["other"] == pytest.approx(4.0 - 1.6 - 0.1 - 0.3 - 0.5 - 0.1 - 0.05 - 0.3)
    assert cpu["pg sessions"] == 12


def test_a_worker_replaced_during_the_run_counts_in_its_supervisors_reaped_time() -> None:
    before = reading({10: p("uvicorn", 1.0), 12: p("python", 5.0, parent=10)}, machine=10.0)
    after = reading(
        {10: p("uvicorn", 1.0, reaped=5.8), 14: p("python", 0.4, parent=10)}, machine=12.0
    )

    cpu = cores_used(before, after, workers=[12], supervisors=[10])

    assert cpu["worker"] == 0.0  # it is gone
    assert cpu["supervisor"] == pytest.approx(5.8)


def test_a_live_process_is_read_from_proc() -> None:
    # A child that burns some CPU: what /proc says of it matches what the kernel charged it.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nt = time.process_time()\n"
         "while time.process_time() - t < 0.3: pass\nimport sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(child.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = processes()[child.pid]

        assert found.parent == os.getpid()
        assert found.own == pytest.approx(cpu_seconds(child.pid), abs=0.05)
        assert found.own >= 0.3
    finally:
        child.communicate(b"")
