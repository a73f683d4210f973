"""nginx with deploy/nginx/skilltree.conf in front of two skilltree instances on loopback:
sessions and rate limits hold across instances (Redis), an instance killed under load fails no
idempotent request, and a rolling restart fails none at all."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.stage import redis_prefix, throwaway_database
from tests.support.databases import require_postgres
from tests.support.nginx import write_config
from tests.support.processes import (
    base_env,
    free_port,
    migrate,
    require_program,
    run_cli,
    serve_command,
    wait_until_ready,
)
from tests.support.redis import REDIS_URL, require_redis

EMAIL = "balanced@example.org"
PASSWORD = "correct horse battery staple 42"
AUTH_QUOTA = 6
# How long nginx leaves out an instance that failed: a restarted one is back in rotation after it.
FAIL_TIMEOUT_SECONDS = 2


@dataclass
class Cluster:
    directory: Path
    env: dict[str, str]
    ports: list[int]
    base: str
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int) -> None:
        with (self.directory / f"instance-{port}.log").open("ab") as log:
            self.processes[port] = subprocess.Popen(
                serve_command(port), env=self.env, stdout=log, stderr=log
            )
        wait_until_ready(f"http://127.0.0.1:{port}", self.processes[port])

    def stop(self, port: int, sig: signal.Signals) -> None:
        process = self.processes.pop(port)
        process.send_signal(sig)
        process.wait(timeout=60)

    def upstreams_used(self, since: int) -> list[str]:
        """The instances nginx sent each request to, from its access log (after line `since`)."""
        lines = (self.directory / "nginx" / "access.log").read_text().splitlines()[since:]
        # A retried request lists every instance it was tried on: "a:1, b:2".
        return [address for line in lines for address in json.loads(line)["upstream"].split(", ")]

    def access_log_length(self) -> int:
        path = self.directory / "nginx" / "access.log"
        return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nginx = require_program("nginx", "nginx")
    asyncio.run(require_postgres())
    asyncio.run(require_redis())
    directory = tmp_path_factory.mktemp("balanced")
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_database())
        prefix = stack.enter_context(redis_prefix())
        env = base_env(
            database_url,
            SKILLTREE_REDIS_URL=REDIS_URL,
            SKILLTREE_REDIS_KEY_PREFIX=prefix,
            SKILLTREE_HTTP_TRUSTED_PROXIES='["127.0.0.1"]',
            SKILLTREE_HTTP_DRAIN_SECONDS="1",
            SKILLTREE_RATE_LIMIT_AUTH=f"{AUTH_QUOTA}/minute",
            SKILLTREE_MAIL_OUTBOX_DIR=str(directory / "mail"),
        )
        migrate(env["SKILLTREE_DATABASE_URL"])
        password_file = directory / "password"
        password_file.write_text(PASSWORD)
        run_cli(env, "user", "create", EMAIL, "--name", "Balanced", "--password-file",
                str(password_file))  # fmt: skip
        ports = [free_port(), free_port()]
        port = free_port()
        state = Cluster(directory, env, ports, f"http://127.0.0.1:{port}")
        stack.callback(_stop_all, state)
        for instance in ports:
            state.start(instance)
        config = write_config(
            directory / "nginx",
            port=port,
            upstreams=[f"127.0.0.1:{p}" for p in ports],
            fail_timeout_seconds=FAIL_TIMEOUT_SECONDS,
        )
        balancer = subprocess.Popen(
            [nginx, "-p", str(directory / "nginx"), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(_stop_balancer, balancer, port)
        wait_until_ready(state.base, balancer)
        yield state


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def _stop_balancer(process: subprocess.Popen[bytes], port: int) -> None:
    """Stop nginx through its master, which stops its workers first (SIGTERM: a fast shutdown);
    killed, the master would leave them running, listening on `port`. Then check none is."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(process)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return  # refused: nothing listens there any more
    raise AssertionError(f"an nginx process still listens on port {port} after its master stopped")


def _stop_all(cluster: Cluster) -> None:
    for process in cluster.processes.values():
        _stop(process)


def test_a_session_and_a_rate_limit_hold_across_instances(cluster: Cluster) -> None:
    since = cluster.access_log_length()
    with httpx.Client(base_url=cluster.base, timeout=30) as client:
        login = client.post("/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200
        profiles = [client.get("/v1/me").status_code for _ in range(6)]
        wrong = {"email": EMAIL, "password": "not the password at all"}
        attempts = [client.post("/v1/auth/login", json=wrong).status_code for _ in range(6)]

    assert profiles == [200] * 6  # the session began on one instance, every instance knows it
    # One quota of AUTH_QUOTA sign-in attempts per client, whichever instance counts them.
    assert attempts == [401] * (AUTH_QUOTA - 1) + [429]
    assert len(set(cluster.upstreams_used(since))) == 2  # both instances answered


def _load(base: str, seconds: float, during: Callable[[], None]) -> tuple[list[int], list[str]]:
    """Reads through nginx from 6 threads while `during` runs; every status and every error."""
    statuses: list[int] = []
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not done.is_set():
                try:
                    statuses.append(client.get("/v1/roadmaps").status_code)
                except httpx.HTTPError as error:
                    errors.append(repr(error))

    with ThreadPoolExecutor(6) as pool:
        for _ in range(6):
            pool.submit(reader)
        time.sleep(seconds)
        during()
        time.sleep(seconds)
        done.set()
    return statuses, errors


def test_an_instance_killed_under_load_fails_no_idempotent_request(cluster: Cluster) -> None:
    victim = cluster.ports[0]

    statuses, errors = _load(cluster.base, 1.5, lambda: cluster.stop(victim, signal.SIGKILL))
    cluster.start(victim)
    time.sleep(FAIL_TIMEOUT_SECONDS + 0.5)  # back in rotation for the next test

    assert errors == []
    assert len(statuses) > 20
    assert set(statuses) == {200}


def test_a_rolling_restart_fails_no_request(cluster: Cluster) -> None:
    def roll() -> None:
        # One instance at a time, the next only once nginx sends to the restarted one again.
        for port in cluster.ports:
            cluster.stop(port, signal.SIGTERM)
            cluster.start(port)
            time.sleep(FAIL_TIMEOUT_SECONDS + 0.5)

    since = cluster.access_log_length()
    statuses, errors = _load(cluster.base, 1.0, roll)

    assert errors == []
    assert set(statuses) == {200}
    assert set(cluster.upstreams_used(since)) == {f"127.0.0.1:{port}" for port in cluster.ports}
