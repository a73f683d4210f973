"""The embedded default under concurrent requests: a running server on SQLite, no Redis.

Writers queue for SQLite's one write lock; they never fail. Each phase sends a bounded number of
requests over 2, 4, 8 and 16 connections at once and expects no answer of 5xx: several learners
writing, one learner on every connection, API keys (whose every use is recorded) reading and
writing, Idempotency-Key creates with their replays, and browser sessions whose sliding expiry
falls due while others write.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import PASSWORD, last_token
from tests.support.processes import free_port, migrate, serve_command, wait_until_ready
from tests.support.progress import WEB

CONNECTIONS = [2, 4, 8, 16]
REQUESTS_PER_CONNECTION = 4
STATUSES = ["in_progress", "done", "skipped", "todo"]
TOPICS = ["etags", "cache-control", "status-codes", "indexes"]


@dataclass
class Server:
    url: str
    outbox: Path
    database: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`skilltree serve` on a fresh SQLite file, as `make run` starts it, on a free port."""
    home = tmp_path_factory.mktemp("sqlite-server")
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SKILLTREE_")  # no Redis, no PostgreSQL from the caller
    } | {
        "SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'skilltree.db'}",
        "SKILLTREE_MAIL_OUTBOX_DIR": str(home / "outbox"),
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",
        "SKILLTREE_RATE_LIMIT_ENABLED": "false",
        "SKILLTREE_LOG_ACCESS_LOG": "false",
        "SKILLTREE_METRICS_ENABLED": "false",
        # Every request finds its session in the database, so a session made old there slides.
        "SKILLTREE_AUTH_PRINCIPAL_CACHE_SECONDS": "0",
    }
    log = home / "server.log"
    migrate(env["SKILLTREE_DATABASE_URL"])
    log_file = log.open("wb")
    process = subprocess.Popen(
        serve_command(port, "--workers", "1"),
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, seconds=120, log=log)
        yield Server(url, home / "outbox", home / "skilltree.db")
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


@dataclass
class Learner:
    email: str
    cookies: httpx.Cookies
    csrf_token: str
    api_key: str
    roadmap: str

    def session_headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf_token}

    def key_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}


async def _sign_up(server: Server, name: str) -> Learner:
    email = f"{name}@example.org"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        registered = await client.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": name}
        )
        assert registered.status_code == 202, registered.text
        verified = await client.post(
            "/v1/auth/verify-email", json={"token": last_token(server.outbox)}
        )
        assert verified.status_code == 204, verified.text
        signed_in = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        csrf = {"x-csrf-token": signed_in.json()["csrf_token"]}
        roadmap = f"web-{name}"  # slugs are the site's, not each owner's
        imported = await client.post(
            "/v1/roadmaps/import", json=WEB, params={"slug": roadmap}, headers=csrf
        )
        assert imported.status_code == 201, imported.text
        scopes = ["progress:read", "progress:write", "roadmaps:write"]
        key = await client.post(
            "/v1/me/api-keys", json={"name": "sync", "scopes": scopes}, headers=csrf
        )
        assert key.status_code == 201, key.text
        return Learner(
            email, client.cookies, signed_in.json()["csrf_token"], key.json()["key"], roadmap
        )


@pytest.fixture(scope="module")
def learners(server: Server) -> list[Learner]:
    async def sign_up_all() -> list[Learner]:
        return [await _sign_up(server, f"learner{n}") for n in range(4)]

    return asyncio.run(sign_up_all())


# One request of a phase: (the connection's client, its learner, a running number) -> status.
Step = Callable[[httpx.AsyncClient, Learner, int], Awaitable[int]]


async def progress_write(client: httpx.AsyncClient, learner: Learner, n: int) -> int:
    topic, status = TOPICS[n % len(TOPICS)], STATUSES[n % len(STATUSES)]
    response = await client.put(
        f"/v1/me/progress/{learner.roadmap}/{topic}",
        json={"status": status},
        headers=learner.session_headers(),
    )
    return response.status_code


async def note_with_if_match(client: httpx.AsyncClient, learner: Learner, n: int) -> int:
    path = f"/v1/me/progress/{learner.roadmap}/{TOPICS[n % len(TOPICS)]}/note"
    current = await client.get(path, headers=learner.session_headers())
    if current.status_code >= 500:
        return current.status_code
    headers = learner.session_headers() | {"if-match": current.headers.get("etag", "*")}
    response = await client.put(path, json={"markdown": f"note {n}"}, headers=headers)
    return response.status_code


async def api_key_read(client: httpx.AsyncClient, learner: Learner, n: int) -> int:
    path = f"/v1/me/progress/{learner.roadmap}/{TOPICS[n % len(TOPICS)]}/note"
    return (await client.get(path, headers=learner.key_headers())).status_code


async def api_key_write(client: httpx.AsyncClient, learner: Learner, n: int) -> int:
    topic, status = TOPICS[n % len(TOPICS)], STATUSES[(n + 1) % len(STATUSES)]
    response = await client.put(
        f"/v1/me/progress/{learner.roadmap}/{topic}",
        json={"status": status},
        headers=learner.key_headers(),
    )
    return response.status_code


async def create_and_replay(client: httpx.AsyncClient, learner: Learner, n: int) -> int:
    key = f"{learner.email}-{id(client)}-{n}"
    headers = learner.key_headers() | {"idempotency-key": key}
    body = {"slug": f"plan-{abs(hash(key)) % 10**9}", "title": "Plan"}
    first = await client.post("/v1/roadmaps", json=body, headers=headers)
    retry = await client.post("/v1/roadmaps", json=body, headers=headers)
    return max(first.status_code, retry.status_code)


async def read_or_write_as_sessions_slide(
    client: httpx.AsyncClient, learner: Learner, n: int
) -> int:
    """Half the connections read a note with the session cookie, half write progress: every
    reader's session is due to slide (see `_age_sessions`), so each read has a write to make."""
    if n // 100 % 2:
        return await progress_write(client, learner, n)
    path = f"/v1/me/progress/{learner.roadmap}/{TOPICS[n % len(TOPICS)]}/note"
    return (await client.get(path, headers=learner.session_headers())).status_code


def _age_sessions(server: Server) -> None:
    """Make every browser session last seen five minutes ago, as after a pause in reading: the
    next request of each slides its idle expiry (at most once a minute)."""
    with sqlite3.connect(server.database, timeout=30) as connection:
        connection.execute(
            "UPDATE browser_sessions SET last_seen_at = datetime(last_seen_at, '-5 minutes')"
        )


async def _run(
    server: Server, learners: list[Learner], connections: int, step: Step, *, one_learner: bool
) -> Counter[int]:
    if step is read_or_write_as_sessions_slide:
        _age_sessions(server)

    async def connection(index: int) -> list[int]:
        learner = learners[0 if one_learner else index % len(learners)]
        # One TCP connection per client: each is a browser tab or a sync client of its own.
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=server.url, cookies=learner.cookies, limits=limits, timeout=60
        ) as client:
            return [
                await step(client, learner, index * 100 + n) for n in range(REQUESTS_PER_CONNECTION)
            ]

    results = await asyncio.gather(*(connection(index) for index in range(connections)))
    return Counter(status for statuses in results for status in statuses)


PHASES: dict[str, tuple[Step, bool]] = {
    "several learners write progress": (progress_write, False),
    "one learner writes progress on every connection": (progress_write, True),
    "notes with If-Match": (note_with_if_match, False),
    "API keys read": (api_key_read, True),
    "API keys write": (api_key_write, False),
    "Idempotency-Key creates and replays": (create_and_replay, False),
    "cookie reads while sessions slide": (read_or_write_as_sessions_slide, True),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_no_request_fails_with_a_server_error(
    server: Server, learners: list[Learner], phase: str
) -> None:
    step, one_learner = PHASES[phase]

    statuses = {
        connections: asyncio.run(_run(server, learners, connections, step, one_learner=one_learner))
        for connections in CONNECTIONS
    }

    server_errors = {
        connections: sum(n for status, n in counts.items() if status >= 500)
        for connections, counts in statuses.items()
    }
    assert server_errors == dict.fromkeys(CONNECTIONS, 0), statuses
    for counts in statuses.values():
        assert sum(n for status, n in counts.items() if 200 <= status < 300) > 0, counts
