"""schemathesis against a running server: the API description tells the truth, and no
generated request — anonymous, as a learner, as an administrator — gets a 5xx.

`skilltree serve` runs as it is deployed: on PostgreSQL with Redis (every caller), and on the
embedded SQLite default (a learner, whose writes are what SQLite has to queue). schemathesis
runs every check with a fixed seed and a bounded number of examples per operation, so the
whole file stays within a few minutes; `tests/fuzz/schemathesis.toml` holds the allow-list,
each entry with the reason it is a false positive.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import PASSWORD, last_token
from tests.support.databases import migrated_postgres_database
from tests.support.processes import free_port, migrate, serve_command, wait_until_ready
from tests.support.redis import REDIS_URL, isolated_prefix

CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).parents[2]
SEED = 20261206
MAX_EXAMPLES = 2
BIN = Path(sys.executable).parent


@dataclass
class Server:
    url: str
    outbox: Path
    env: dict[str, str]


@asynccontextmanager
async def _backend(name: str, home: Path) -> AsyncIterator[dict[str, str]]:
    if name == "sqlite":
        yield {"SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'skilltree.db'}"}
        return
    async with migrated_postgres_database() as url, isolated_prefix() as prefix:
        yield {
            "SKILLTREE_DATABASE_URL": url,
            "SKILLTREE_REDIS_URL": REDIS_URL,
            "SKILLTREE_REDIS_KEY_PREFIX": prefix,
        }


def _environment(home: Path, backend: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SKILLTREE_")  # only what this file sets
    } | {
        "SKILLTREE_MAIL_OUTBOX_DIR": str(home / "outbox"),
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",
        # Limits would answer most generated requests with 429 (documented on every /v1
        # operation) and test nothing else; tests/platform/test_rate_limit.py covers them.
        "SKILLTREE_RATE_LIMIT_ENABLED": "false",
        "SKILLTREE_LOG_ACCESS_LOG": "false",
        # A live stream ends after a second, with its `close` event: the fuzzer reads it whole
        # and checks every event against the document, where it would otherwise hold a worker
        # until its request timeout and check nothing.
        "SKILLTREE_REALTIME_STREAM_MAX_SECONDS": "1",
        "SKILLTREE_REALTIME_HEARTBEAT_SECONDS": "0.5",
        # Stopped at once: no balancer sends this server traffic to drain.
        "SKILLTREE_HTTP_DRAIN_SECONDS": "0",
        **backend,
    }


@contextmanager
def _serving(env: dict[str, str], home: Path) -> Iterator[str]:
    """`skilltree serve` on a migrated database and a free port; its URL."""
    port = free_port()
    migrate(env["SKILLTREE_DATABASE_URL"])
    log = home / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            serve_command(port, "--workers", "1"),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, process, seconds=180, log=log)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=60)


def _learner_token(url: str, outbox: Path) -> str:
    email = "fuzz-learner@example.org"
    with httpx.Client(base_url=url, timeout=60) as client:
        registered = client.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": "F"}
        )
        assert registered.status_code == 202, registered.text
        verified = client.post("/v1/auth/verify-email", json={"token": last_token(outbox)})
        assert verified.status_code == 204, verified.text
        return _token(client, email)


def _admin_token(url: str, env: dict[str, str], home: Path) -> str:
    email = "fuzz-admin@example.org"
    password_file = home / "admin-password"
    password_file.write_text(PASSWORD)
    subprocess.run(
        [
            BIN / "skilltree",
            "user",
            "create",
            email,
            "--name",
            "Admin",
            "--admin",
            "--password-file",
            str(password_file),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    with httpx.Client(base_url=url, timeout=60) as client:
        return _token(client, email)


def _token(client: httpx.Client, email: str) -> str:
    response = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _schemathesis(
    url: str, caller: str, token: str | None, report: Path, only: str | None = None
) -> str | None:
    """Run schemathesis with every check; None when it found nothing, else its report."""
    # Read the document once, here: building it takes seconds on a busy machine, longer than
    # schemathesis waits for it.
    document = report.with_suffix(".openapi.json")
    document.write_bytes(httpx.get(f"{url}/openapi.json", timeout=120).content)
    command = [
        BIN / "schemathesis",
        "--config-file",
        str(CONFIG),
        "run",
        str(document),
        "--url",
        url,
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        # The coverage phase sends thousands of boundary cases per caller: minutes, not seconds.
        "--phases",
        "examples,fuzzing",
        # One worker: with two, the threads share schemathesis's cached strategies, so the
        # fixed seed no longer fixes what is generated, and a race between them once ended a
        # run with an error inside the generator instead of a finding.
        "--workers",
        "1",
        "--no-shrink",
        "--no-color",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
    ]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
        # Signing out ends the very credential the run sends, and every later request would be
        # a 401 that tests nothing; sign-out has tests of its own (tests/accounts).
        command += ["--exclude-path-regex", "^/v1/auth/logout"]
    if only is not None:
        command += ["--include-path-regex", only]
    environment = os.environ | {"SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=environment, cwd=ROOT
    )
    report.write_text(result.stdout + result.stderr)
    if result.returncode == 0:
        return None
    return (
        f"--- {caller}: exit {result.returncode} (full report: {report})\n{result.stdout[-12000:]}"
    )


# Each run is a caller and the operations it fuzzes (None: all of them). Anonymous and the
# learner go through every operation on PostgreSQL. The administrator only through the admin
# routes: elsewhere an administrator is a signed-in user like the learner, already fuzzed. On
# SQLite, the learner's own writes (progress, notes, resources, keys) and roadmaps: what the
# embedded default has to queue; the rest is the same code on another database. Together they
# stay within four minutes in CI.
ADMIN_ROUTES = "^/v1/admin/"
SQLITE_SUBSET = "^/v1/(me|roadmaps)(/|$)"


@pytest.mark.parametrize(
    ("backend", "runs"),
    [
        pytest.param(
            "postgresql",
            [("anonymous", None), ("learner", None), ("admin", ADMIN_ROUTES)],
            id="postgresql-redis",
        ),
        pytest.param("sqlite", [("learner", SQLITE_SUBSET)], id="sqlite"),
    ],
)
async def test_schemathesis_finds_no_failure(
    backend: str, runs: list[tuple[str, str | None]], tmp_path: Path
) -> None:
    async with _backend(backend, tmp_path) as settings:
        env = _environment(tmp_path, settings)

        def run_all() -> list[str]:
            with _serving(env, tmp_path) as url:
                # Access tokens live ten minutes: each caller's is made just before its run.
                tokens: dict[str, Callable[[], str | None]] = {
                    "anonymous": lambda: None,
                    "learner": lambda: _learner_token(url, tmp_path / "outbox"),
                    "admin": lambda: _admin_token(url, env, tmp_path),
                }
                found = [
                    _schemathesis(url, caller, tokens[caller](), tmp_path / f"{caller}.txt", only)
                    for caller, only in runs
                ]
            return [report for report in found if report is not None]

        failures = await asyncio.to_thread(run_all)

    assert failures == [], "\n".join(failures)
