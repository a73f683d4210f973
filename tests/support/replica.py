"""A PostgreSQL primary and its streaming replica, built for the tests on loopback: `initdb` and
`pg_ctl` for the primary, `pg_basebackup -R` for the replica, each on a free port, in a
directory of their own. The shared server of the machine is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.support.databases import IN_CI
from tests.support.processes import free_port


def _server_programs() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"))
    if not found:
        reason = "PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) are not installed"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: these tests must run)", pytrace=False)
        pytest.skip(f"{reason} (Debian package postgresql); `make test` installs them")
    return Path(found[-1]).parent


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the tests run as root on the project's machines.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class StreamingPair:
    programs: Path
    directory: Path
    primary_port: int
    replica_port: int

    def url(self, port: int, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"

    def dsn(self, port: int, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def _pg_ctl(self, data: str, *args: str) -> None:
        subprocess.run(
            _as_server_user(
                [str(self.programs / "pg_ctl"), "-D", str(self.directory / data), *args]
            ),
            check=True,
            capture_output=True,
        )

    def start(self, data: str, port: int) -> None:
        options = f"-p {port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.directory / f"{data}.log")
        self._pg_ctl(data, "-l", log, "-w", "-o", options, "start")

    def stop(self, data: str) -> None:
        self._pg_ctl(data, "-m", "fast", "-w", "stop")

    async def replica_sql(self, query: str) -> object:
        connection = await asyncpg.connect(self.dsn(self.replica_port), timeout=5)
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    async def pause_replay(self) -> None:
        await self.replica_sql("SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await self.replica_sql("SELECT pg_wal_replay_resume()")

    async def until_replayed(self, seconds: float = 10) -> None:
        """Wait until the replica has replayed everything the primary wrote so far."""
        primary = await asyncpg.connect(self.dsn(self.primary_port), timeout=5)
        try:
            position = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
        finally:
            await primary.close()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            caught_up = await self.replica_sql(
                f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"
            )
            if caught_up:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the replica did not replay up to {position} within {seconds} s")

    @asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """A new database on the primary (so on the replica too); its name."""
        name = f"skilltree_{uuid.uuid4().hex[:12]}"
        primary = await asyncpg.connect(self.dsn(self.primary_port), timeout=5)
        try:
            await primary.execute(f'CREATE DATABASE "{name}"')
            yield name
        finally:
            await primary.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await primary.close()


@contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    programs = _server_programs()
    # Under /tmp, owned by the server's user, who cannot enter pytest's own temporary directories.
    directory = Path(tempfile.mkdtemp(prefix="skilltree-replica-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user="postgres")
    pair = StreamingPair(programs, directory, free_port(), free_port())
    started: list[str] = []
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(programs / "initdb"),
                    "--no-sync",
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-D",
                    str(directory / "primary"),
                ]
            ),
            check=True,
            capture_output=True,
        )
        pair.start("primary", pair.primary_port)
        started.append("primary")
        subprocess.run(
            _as_server_user(
                [
                    str(programs / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(pair.primary_port),
                    "-U",
                    "postgres",
                    "-D",
                    str(directory / "replica"),
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        pair.start("replica", pair.replica_port)
        started.append("replica")
        yield pair
    except subprocess.CalledProcessError as error:
        logs = "\n".join(p.read_text() for p in directory.glob("*.log"))
        pytest.fail(f"{error.cmd}: {error.stderr!r}\n{logs}")
    finally:
        for data in reversed(started):
            subprocess.run(
                _as_server_user(
                    [
                        str(programs / "pg_ctl"),
                        "-D",
                        str(directory / data),
                        "-m",
                        "immediate",
                        "stop",
                    ]
                ),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(directory, ignore_errors=True)
