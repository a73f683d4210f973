"""skilltree's own commands as child processes on loopback, for tests of what only a real
process shows: signals, sockets, several instances."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.databases import IN_CI

ROOT = Path(__file__).resolve().parents[2]
SKILLTREE = Path(sys.executable).parent / "skilltree"
HUGE_QUOTA = "1000000000/minute"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """Development settings on the given database, quiet logs, limits too large to trip."""
    return {
        **os.environ,
        "SKILLTREE_DATABASE_URL": database_url,
        "SKILLTREE_LOG_LEVEL": "WARNING",
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",
        "SKILLTREE_RATE_LIMIT_AUTH": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_WRITE": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_READ": HUGE_QUOTA,
        **extra,
    }


def migrate(database_url: str) -> None:
    """The schema `skilltree migrate upgrade` makes (the same function), made from this
    process, which has skilltree imported already, instead of a new one that imports it again.
    In a thread of its own: a caller's event loop may be running (it waits)."""
    settings = DatabaseSettings(url=database_url)

    async def upgrade() -> None:
        engine = create_engine(settings)
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(lambda: asyncio.run(upgrade())).result()


def run_cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(SKILLTREE), *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"skilltree {' '.join(args)}: {done.stderr}"


@contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process whose output goes to `log`; stopped (SIGKILL) if a test leaves it."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def serve_command(port: int, *extra: str) -> list[str]:
    return [str(SKILLTREE), "serve", "--host", "127.0.0.1", "--port", str(port), *extra]


def wait_until_ready(
    base_url: str, process: subprocess.Popen[bytes], seconds: float = 90, log: Path | None = None
) -> None:
    """Wait for /readyz; a server that exits or never gets ready fails with its log's tail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with code {process.returncode}{_tail_of(log)}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base_url} was not ready within {seconds} s{_tail_of(log)}")


def _tail_of(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-3000:]


def require_program(name: str, package: str) -> str:
    """The path of a program a test runs (nginx, promtool, prometheus). Outside CI a missing one
    skips the test with the package to install; with CI=true it fails it (`make test` installs
    them)."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        reason = f"{name} is not installed (Debian package {package})"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: these tests must run)", pytrace=False)
        pytest.skip(f"{reason}; `make test` installs it")
    return path
