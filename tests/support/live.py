"""Real servers on loopback for the real-time tests: `skilltree serve` (uvicorn) in a process
of its own on a free port, on a migrated SQLite file, optionally sharing a Redis with others.

Streams and sockets need a real server: a test transport cannot hold a connection open while
the test does something else, and shutting down is a signal to a process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import PASSWORD, Browser, last_token
from tests.support.databases import migrated_postgres_database
from tests.support.processes import migrate

SKILLTREE = Path(sys.executable).parent / "skilltree"
ALLOWED_ORIGIN = "http://allowed.test"
# Every wait in these tests is bounded by this.
STARTUP_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_environment(workdir: Path, **realtime: object) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SKILLTREE_") or key.startswith("SKILLTREE_TEST_")
    }
    env |= {
        "SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/live.db",
        "SKILLTREE_MAIL_OUTBOX_DIR": str(workdir / "outbox"),
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",
        "SKILLTREE_AUTH_ALLOWED_ORIGINS": f'["{ALLOWED_ORIGIN}"]',
        "SKILLTREE_RATE_LIMIT_ENABLED": "false",
        "SKILLTREE_LOG_LEVEL": "WARNING",
        # No drain window after SIGTERM: no balancer sends these servers traffic, and every
        # stop would otherwise spend it (5 s by default) answering nobody.
        # tests/platform/test_shutdown.py tests the window itself.
        "SKILLTREE_HTTP_DRAIN_SECONDS": "0",
    }
    env |= {f"SKILLTREE_REALTIME_{name.upper()}": str(value) for name, value in realtime.items()}
    return env


# The databases live servers run on: the embedded SQLite file, and PostgreSQL as deployed
# (skipped without the server outside CI, like every PostgreSQL test).
LIVE_DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@asynccontextmanager
async def live_database(backend: str, env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """`env` on the named database: as it is for SQLite, or on a throwaway PostgreSQL
    database dropped afterwards."""
    if backend == "sqlite":
        yield env
        return
    async with migrated_postgres_database() as url:
        yield env | {"SKILLTREE_DATABASE_URL": url}


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    outbox: Path
    log: Path

    def stop(self) -> float:
        """SIGTERM, as an orchestrator sends it; returns how long the server took to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return time.monotonic() - started


def launch_server(env: dict[str, str], workdir: Path) -> LiveServer:
    """`skilltree serve` started on a free port, not yet waited for (see `wait_until_live`)."""
    port = free_port()
    log = workdir / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(SKILLTREE), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return LiveServer(
        f"http://127.0.0.1:{port}", process, Path(env["SKILLTREE_MAIL_OUTBOX_DIR"]), log
    )


def wait_until_live(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/livez", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start in time:\n{server.log.read_text()}")


# Tries at starting a server before its port counts as never free.
PORT_TRIES = 3


def bring_up(servers: list[LiveServer], index: int, env: dict[str, str], workdir: Path) -> None:
    """Wait until `servers[index]` is live; when its port was taken between `free_port`
    choosing it and the server binding it (another process's connection may take it
    meanwhile), put a new one on another port in its place, so that whoever stops the list
    stops every server started."""
    for attempt in range(1, PORT_TRIES + 1):
        try:
            wait_until_live(servers[index])
            return
        except RuntimeError:
            taken = "address already in use" in servers[index].log.read_text()
            if not taken or attempt == PORT_TRIES:
                raise
        servers[index] = launch_server(env, workdir)


@contextmanager
def running_servers(
    env: dict[str, str], workdir: Path, count: int = 1
) -> Iterator[list[LiveServer]]:
    """`count` servers on one migrated database, started side by side (each start is mostly
    importing skilltree), stopped afterwards."""
    migrate(env["SKILLTREE_DATABASE_URL"])
    servers: list[LiveServer] = []
    try:
        for _ in range(count):
            servers.append(launch_server(env, workdir))
        for index in range(count):
            bring_up(servers, index, env, workdir)
        yield servers
    finally:
        for server in servers:
            server.stop()


async def person(server: LiveServer, name: str) -> Browser:
    """A new verified, signed-in person with a unique e-mail address, on a live server."""
    client = httpx.AsyncClient(base_url=server.url, timeout=10)
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.org"
    registered = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": name}
    )
    assert registered.status_code == 202, registered.text
    verified = await client.post("/v1/auth/verify-email", json={"token": last_token(server.outbox)})
    assert verified.status_code == 204, verified.text
    signed_in = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    browser = Browser(client, signed_in.json()["csrf_token"])
    browser.client.headers["x-test-email"] = email
    return browser


async def join(owner: Browser, guest: Browser, server: LiveServer, org: str, role: str) -> None:
    email = guest.client.headers["x-test-email"]
    invited = await owner.client.post(
        f"/v1/orgs/{org}/invitations",
        json={"email": email, "role": role},
        headers=owner.write_headers,
    )
    assert invited.status_code == 201, invited.text
    joined = await guest.client.post(
        "/v1/invitations/accept",
        json={"token": last_token(server.outbox)},
        headers=guest.write_headers,
    )
    assert joined.status_code == 200, joined.text


async def new_org(owner: Browser) -> str:
    slug = f"cohort-{uuid.uuid4().hex[:8]}"
    created = await owner.client.post(
        "/v1/orgs", json={"slug": slug, "name": slug}, headers=owner.write_headers
    )
    assert created.status_code == 201, created.text
    return slug
