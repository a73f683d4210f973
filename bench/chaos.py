"""Chaos under load: kill the API, restart PostgreSQL, stop Redis and RabbitMQ; count what broke.

    .venv/bin/python bench/chaos.py [--kill-api] [--restart-postgres] [--stop-redis]
                                    [--stop-rabbitmq] [--all] [--kills 5] [--outage 5]
                                    [--connections 4] [--database postgresql|sqlite]

Every scenario is off unless named (or `--all`); each is bounded in requests and in time and
stops by itself. Every server it disturbs is its own, started here on a free loopback port in a
temporary directory and removed at the end: a PostgreSQL cluster (`initdb`, `pg_ctl`), a
`redis-server`, a RabbitMQ node (its own node name, data and config). The machine's shared
services are never touched. skilltree runs as `skilltree serve` (and `worker`/`relay`) child
processes.

- kill-api: writers create roadmaps with an Idempotency-Key while the server is killed with
  SIGKILL and restarted `--kills` times; then every request that got no answer is retried with
  its key until answered. Every acknowledged create must be stored, once; no key may stay stuck.
- restart-postgres: readers and writers while PostgreSQL stops for `--outage` seconds and
  starts again; errors only during the outage, and the same skilltree process recovers.
- stop-redis: reads, writes and sign-ins while Redis stops and starts; what fails is what
  docs/performance.md and docs/security.md say (only sign-ins, 503; readiness 503).
- stop-rabbitmq: events flow outbox → relay → RabbitMQ → worker while the node stops and starts;
  none lost, none applied twice, no skilltree process restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skilltree.models  # noqa: E402, F401
from bench.crash_tasks import CREATE_APPLIED  # noqa: E402
from bench.usage import load_average  # noqa: E402
from skilltree.platform import events  # noqa: E402
from skilltree.platform.config import DatabaseSettings  # noqa: E402
from skilltree.platform.db import Database  # noqa: E402
from skilltree.platform.mail import read_outbox  # noqa: E402

SKILLTREE = Path(sys.executable).parent / "skilltree"
WITH_BENCH_TASKS = [
    sys.executable,
    "-c",
    "import bench.crash_tasks, skilltree.cli as cli; cli.main()",
]
PASSWORD = "correct horse battery staple 42"  # noqa: S105 - a throwaway learner
EMAIL = "chaos@example.org"
TOKEN_IN_MAIL = re.compile(r"token=([A-Za-z0-9_-]{20,})")
HUGE_QUOTA = "1000000000/minute"
READY_SECONDS = 120.0
# Every request of the load has this timeout: a hung request counts as an error, not a stall.
REQUEST_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_user(user: str, command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root, and RabbitMQ's scripts switch to their own user.
    return ["runuser", "-u", user, "--", *command] if os.geteuid() == 0 else command


def _owned_by(user: str, prefix: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(directory, user=user, group=user)
    return directory


# --- private servers ---------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway cluster on a free port; `stop` and `start` are the outage."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise SystemExit("PostgreSQL's server programs are not installed (package postgresql)")
        self.programs = found[-1].parent
        self.directory = _owned_by("postgres", "skilltree-chaos-pg-")
        self.port = free_port()
        data = str(self.directory / "data")
        self._run("initdb", "--no-sync", "-A", "trust", "-U", "postgres", "-D", data)
        self.start()
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "skilltree"
        )

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.programs / program), *args]
        subprocess.run(_as_user("postgres", command), check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/skilltree"

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.programs / "pg_ctl"), "-D", str(self.directory / "data"), *args]
        subprocess.run(_as_user("postgres", command), check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg_ctl("-l", str(self.directory / "server.log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        # "fast": open connections are cut, as in a failover or a crash of the host.
        self._pg_ctl("-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class PrivateRabbitMQ:
    """A RabbitMQ node of its own: its own name, port, data and config. Stopping the node and
    starting it again keeps its durable (quorum) queues, as a restarted server does."""

    def __init__(self) -> None:
        self.directory = _owned_by("rabbitmq", "skilltree-chaos-rabbitmq-")
        self.port = free_port()
        self.node = f"chaos{os.getpid()}@localhost"
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
        )
        (self.directory / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            for name in ("rabbitmq.conf", "enabled_plugins"):
                shutil.chown(self.directory / name, user="rabbitmq", group="rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "node.pid"),
        }
        self.start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True
        )
        # `await_startup` fails at once while the node has not even registered its name yet.
        deadline = time.monotonic() + 120
        while True:
            try:
                self._ctl("await_startup", "--timeout", "120")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop(self) -> None:
        self._ctl("stop")

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=150,
        )

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


# --- skilltree processes -----------------------------------------------------------------------


def skilltree_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("SKILLTREE_")}
    return kept | {
        "SKILLTREE_DATABASE_URL": database_url,
        "SKILLTREE_MAIL_OUTBOX_DIR": str(workdir / "mail"),
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",
        "SKILLTREE_LOG_LEVEL": "WARNING",
        # Limits that never trip: what is measured is the outage, not the quotas.
        "SKILLTREE_RATE_LIMIT_AUTH": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_WRITE": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_READ": HUGE_QUOTA,
        **extra,
    }


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(SKILLTREE), "migrate", "upgrade"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"skilltree migrate upgrade failed: {done.stderr[-2000:]}")


@dataclass
class Api:
    """`skilltree serve` on a fixed port, which `restart` reuses (clients keep their URL)."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(SKILLTREE), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=output, stderr=output
            )
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        # /livez, not /readyz: the next kill needs a process that serves, and on SQLite under
        # write load /readyz's two-second database check can time out behind queued writers.
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"skilltree serve exited: {self.log.read_text()[-2000:]}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/livez", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"skilltree serve not ready after {READY_SECONDS} s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serving(env: dict[str, str], workdir: Path) -> Iterator[Api]:
    api = Api(env, workdir / "serve.log")
    api.start()
    try:
        yield api
    finally:
        api.stop()


async def bearer_for_new_learner(api: Api, outbox: Path) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=api.base, timeout=REQUEST_SECONDS) as client:
        body = {"email": EMAIL, "password": PASSWORD, "display_name": "Chaos"}
        registered = await client.post("/v1/auth/register", json=body)
        assert registered.status_code == 202, registered.text
        [token] = TOKEN_IN_MAIL.findall(read_outbox(outbox)[-1].get_body(("plain",)).get_content())  # type: ignore[union-attr]
        verified = await client.post("/v1/auth/verify-email", json={"token": token})
        assert verified.status_code == 204, verified.text
        issued = await client.post("/v1/auth/token", json={"email": EMAIL, "password": PASSWORD})
        assert issued.status_code == 200, issued.text
    return {"authorization": f"Bearer {issued.json()['access_token']}"}


# --- load and its record ----------------------------------------------------------------------


@dataclass
class Outcome:
    at: float  # seconds since the scenario started
    kind: str
    result: str  # the status code, or the exception's name when no answer came


@dataclass
class Record:
    started: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def add(self, kind: str, result: str) -> None:
        self.outcomes.append(Outcome(self.now(), kind, result))

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.at < end]


def is_error(result: str) -> bool:
    return not result.isdigit() or int(result) >= 500


def summary(outcomes: list[Outcome]) -> str:
    counts = Counter(f"{o.kind} {o.result}" for o in outcomes)
    return ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "none"


async def timed(
    record: Record, kind: str, call: Awaitable[httpx.Response]
) -> httpx.Response | None:
    try:
        response = await call
    except httpx.TransportError as error:
        record.add(kind, type(error).__name__)
        return None
    record.add(kind, str(response.status_code))
    return response


async def load(
    record: Record,
    stop: asyncio.Event,
    base: str,
    connections: int,
    step: Callable[[httpx.AsyncClient, int], Awaitable[None]],
) -> None:
    """`connections` clients, each calling `step` back to back until `stop` is set."""

    async def client_loop(index: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=REQUEST_SECONDS) as client:
            n = 0
            while not stop.is_set():
                await step(client, index * 1_000_000 + n)
                n += 1

    await asyncio.gather(*(client_loop(i) for i in range(connections)))


# --- kill -9 of the API ------------------------------------------------------------------------


@dataclass
class Create:
    """One roadmap a writer creates, retried with its Idempotency-Key until it is answered."""

    slug: str
    tries: int = 0
    answer: str = ""  # "201", "201 replayed", or the last refusal when it never got a 201


# How long a writer keeps retrying one create: the 30-second lease of a claim left by a killed
# server, plus a restart, plus margin.
RETRY_FOR_SECONDS = 90.0


async def kill_api(options: argparse.Namespace, workdir: Path, database_url: str) -> bool:
    env = skilltree_env(database_url, workdir)
    migrate(env)
    rng = random.Random(13)
    record = Record()
    creates: list[Create] = []

    async def create(client: httpx.AsyncClient, n: int) -> None:
        attempt = Create(f"chaos-{n}")
        creates.append(attempt)
        await create_until_answered(client, record, bearer, attempt)

    with serving(env, workdir) as api:
        bearer = await bearer_for_new_learner(api, workdir / "mail")
        record = Record()
        stop = asyncio.Event()
        writers = asyncio.create_task(load(record, stop, api.base, options.connections, create))
        for _ in range(options.kills):
            await asyncio.sleep(rng.uniform(2.0, 4.0))
            api.kill()
            await asyncio.to_thread(api.start)
        await asyncio.sleep(2.0)
        stop.set()
        await writers  # each writer finishes its create, retrying until it is answered

    stored = await stored_slugs(database_url)
    acknowledged = {c.slug for c in creates if c.answer.startswith("201")}
    print(
        f"kill-api ({database_url.split('+')[0]}): {options.kills} kill -9 "
        f"in {record.now():.0f} s, {options.connections} writers retrying with their key"
    )
    print(f"  responses and errors seen: {summary(record.outcomes)}")
    print(
        f"  creates: {len(creates)}; answered 201: {len(acknowledged)} "
        f"({sum(c.answer == '201 replayed' for c in creates)} as a replay); "
        f"retried at least once: {sum(c.tries > 1 for c in creates)}; "
        f"most tries for one create: {max((c.tries for c in creates), default=0)}"
    )
    print(
        f"  stored: {len(stored)}; acknowledged but missing: {len(acknowledged - stored)}; "
        f"stored but never acknowledged: {len(stored - acknowledged)}; "
        f"never answered 201: {len(creates) - len(acknowledged)}"
    )
    return stored == acknowledged and len(acknowledged) == len(creates)


async def create_until_answered(
    client: httpx.AsyncClient, record: Record, bearer: dict[str, str], attempt: Create
) -> None:
    """POST until a 201 (first run or replay), as a client honouring Retry-After does: no
    answer, a 5xx or 409 `idempotency-key-in-flight` mean "try again with the same key"."""
    headers = bearer | {"idempotency-key": attempt.slug}
    body = {"slug": attempt.slug, "title": attempt.slug}
    deadline = time.monotonic() + RETRY_FOR_SECONDS
    while time.monotonic() < deadline:
        attempt.tries += 1
        response = await timed(
            record, "create", client.post("/v1/roadmaps", json=body, headers=headers)
        )
        if response is not None and response.status_code == 201:
            replayed = response.headers.get("idempotency-replayed") == "true"
            attempt.answer = "201 replayed" if replayed else "201"
            return
        attempt.answer = "no answer" if response is None else str(response.status_code)
        if response is not None and response.status_code < 500 and response.status_code != 409:
            return  # refused for good: counted as never answered 201
        wait = 0.2 if response is None else float(response.headers.get("retry-after", "0.2"))
        await asyncio.sleep(wait)


async def stored_slugs(database_url: str) -> set[str]:
    database = Database.from_settings(DatabaseSettings(url=database_url))
    try:
        async with database.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT slug FROM roadmaps WHERE slug LIKE 'chaos-%'")
            )
            return {row[0] for row in rows}
    finally:
        await database.dispose()


# --- an outage of a server skilltree depends on ------------------------------------------------


@dataclass
class Outage:
    began: float
    ended: float  # the server is back (started and accepting connections)


async def under_outage(
    record: Record,
    stop_server: Callable[[], None],
    start_server: Callable[[], None],
    *,
    before: float,
    outage: float,
) -> Outage:
    await asyncio.sleep(before)
    began = record.now()
    await asyncio.to_thread(stop_server)
    await asyncio.sleep(outage)
    await asyncio.to_thread(start_server)
    return Outage(began, record.now())


def recovery(record: Record, outage: Outage, kinds: set[str]) -> float | None:
    """Seconds from the server's return until every kind of request succeeded again."""
    after = [o for o in record.outcomes if o.at >= outage.ended and o.kind in kinds]
    last_error = max((o.at for o in after if is_error(o.result)), default=outage.ended)
    if not any(o.at > last_error for o in after):
        return None
    return last_error - outage.ended


async def restart_postgres(options: argparse.Namespace, workdir: Path) -> bool:
    postgres = PrivatePostgres()
    try:
        env = skilltree_env(postgres.url, workdir)
        migrate(env)
        with serving(env, workdir) as api:
            assert api.process is not None
            pid = api.process.pid
            bearer = await bearer_for_new_learner(api, workdir / "mail")
            record = Record()
            stop = asyncio.Event()

            async def read_and_write(client: httpx.AsyncClient, n: int) -> None:
                await timed(record, "read", client.get("/v1/roadmaps", headers=bearer))
                body = {"slug": f"pg-{n}", "title": f"Outage {n}"}
                await timed(record, "write", client.post("/v1/roadmaps", json=body, headers=bearer))
                await asyncio.sleep(0.05)

            loads = asyncio.create_task(
                load(record, stop, api.base, options.connections, read_and_write)
            )
            outage = await under_outage(
                record, postgres.stop, postgres.start, before=5, outage=options.outage
            )
            await asyncio.sleep(15)
            stop.set()
            await loads
            same_process = api.process.poll() is None and api.process.pid == pid
    finally:
        postgres.remove()
    return report_outage("restart-postgres", record, outage, {"read", "write"}, same_process)


def report_outage(
    name: str, record: Record, outage: Outage, kinds: set[str], same_process: bool
) -> bool:
    before = record.between(0, outage.began)
    during = record.between(outage.began, outage.ended)
    recovered = recovery(record, outage, kinds)
    settled = outage.ended + (recovered or 0.0)
    # Strictly after: a request that failed at the very moment the server came back belongs
    # to the outage.
    after = [o for o in record.outcomes if o.at > settled]
    print(
        f"{name}: outage from {outage.began:.1f} s to {outage.ended:.1f} s "
        f"({outage.ended - outage.began:.1f} s down, stop to start)"
    )
    print(f"  before: {summary(before)}")
    print(f"  during: {summary(during)}")
    print(f"  recovering: {summary(record.between(outage.ended, settled))}")
    print(f"  after: {summary(after)}")
    shown = "never" if recovered is None else f"{recovered:.2f} s after the server was back"
    print(f"  every request kind succeeding again: {shown}; same skilltree process: {same_process}")
    clean = not any(is_error(o.result) for o in before + after if o.kind in kinds)
    return clean and recovered is not None and same_process


async def stop_redis(options: argparse.Namespace, workdir: Path, database_url: str) -> bool:
    redis = PrivateRedis()
    try:
        env = skilltree_env(
            database_url,
            workdir,
            SKILLTREE_REDIS_URL=redis.url,
            SKILLTREE_REDIS_TIMEOUT_SECONDS="0.5",
        )
        migrate(env)
        with serving(env, workdir) as api:
            assert api.process is not None
            pid = api.process.pid
            bearer = await bearer_for_new_learner(api, workdir / "mail")
            record = Record()
            stop = asyncio.Event()
            sign_in = {"email": EMAIL, "password": PASSWORD}

            async def mixed(client: httpx.AsyncClient, n: int) -> None:
                await timed(record, "read", client.get("/v1/roadmaps", headers=bearer))
                body = {"slug": f"redis-{n}", "title": f"Redis {n}"}
                await timed(record, "write", client.post("/v1/roadmaps", json=body, headers=bearer))
                if n % 5 == 0:
                    await timed(record, "sign-in", client.post("/v1/auth/token", json=sign_in))
                    await timed(record, "readyz", client.get("/readyz"))
                await asyncio.sleep(0.05)

            loads = asyncio.create_task(load(record, stop, api.base, options.connections, mixed))
            outage = await under_outage(
                record, redis.stop, redis.start, before=5, outage=options.outage
            )
            await asyncio.sleep(10)
            stop.set()
            await loads
            same_process = api.process.poll() is None and api.process.pid == pid
    finally:
        redis.stop()
    during = record.between(outage.began, outage.ended)
    # Documented: reads and writes go on (the cache falls back to the database); sign-ins are
    # refused with 503 (their limiter needs Redis); readiness says 503.
    as_documented = not any(is_error(o.result) for o in during if o.kind in {"read", "write"})
    fine = report_outage(
        "stop-redis", record, outage, {"read", "write", "sign-in", "readyz"}, same_process
    )
    print(f"  reads and writes never failed during the outage: {as_documented}")
    return fine and as_documented


async def stop_rabbitmq(options: argparse.Namespace, workdir: Path, database_url: str) -> bool:
    rabbitmq = PrivateRabbitMQ()
    database = Database.from_settings(DatabaseSettings(url=database_url))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = skilltree_env(
            database_url,
            workdir,
            SKILLTREE_QUEUE_BROKER="rabbitmq",
            SKILLTREE_QUEUE_RABBITMQ_URL=rabbitmq.url,
            SKILLTREE_QUEUE_POLL_INTERVAL_SECONDS="0.05",
            SKILLTREE_QUEUE_NAME="skilltree-chaos",
        )
        migrate(env)
        async with database.engine.begin() as connection:
            await connection.execute(text(CREATE_APPLIED))
        for role, args in (("worker", ["worker", "--no-relay"]), ("relay", ["relay"])):
            processes.append(start_background(role, args, env, workdir))
        record = Record()
        emitted = 0

        enough = asyncio.Event()

        async def emit_steadily() -> None:
            nonlocal emitted
            while not enough.is_set() and emitted < MAX_EVENTS:
                async with database.unit_of_work() as session:
                    for _ in range(5):
                        events.emit(session, "bench.tick", at=datetime.now(UTC), data={})
                emitted += 5
                await asyncio.sleep(0.1)

        samples: list[tuple[float, int]] = []  # (seconds, events applied so far)

        async def sample_progress() -> None:
            while True:
                samples.append((record.now(), (await applied(database))[1]))
                await asyncio.sleep(0.5)

        producer = asyncio.create_task(emit_steadily())
        sampler = asyncio.create_task(sample_progress())
        # The outage must hit a worker that is consuming, not one still starting up.
        await until_applied(database, at_least=1, seconds=120)
        outage = await under_outage(
            record, rabbitmq.stop, rabbitmq.start, before=3, outage=options.outage
        )
        await asyncio.sleep(10)
        enough.set()
        await producer
        deadline = time.monotonic() + 240
        total = distinct = 0
        while time.monotonic() < deadline:
            total, distinct = await applied(database)
            if distinct >= emitted:
                break
            await asyncio.sleep(0.5)  # another process's progress: nothing to wait on but polling
        settled_at = record.now()
        sampler.cancel()
        alive = all(p.poll() is None for p in processes)
        async with database.engine.connect() as connection:
            dead = int(await connection.scalar(text("SELECT count(*) FROM dead_letters")) or 0)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        await database.dispose()
        rabbitmq.remove()
    print(
        f"stop-rabbitmq: node down from {outage.began:.1f} s to {outage.ended:.1f} s; "
        f"{emitted} events emitted through the outbox"
    )
    print(
        f"  applied: {distinct} distinct, {total} applications, by {settled_at:.1f} s "
        f"({settled_at - outage.ended:.1f} s after the node was back); dead letters: {dead}"
    )
    print(
        f"  not applied when the wait ended: {emitted - distinct}; "
        f"applied twice or more: {total - distinct}; "
        f"worker and relay never restarted: {alive}"
    )
    print(f"  {throughput(samples, outage)}")
    return distinct == emitted == total and dead == 0 and alive


def throughput(samples: list[tuple[float, int]], outage: Outage) -> str:
    """How fast events were applied before the outage and after it, and how long after the
    node was back the first one was applied: a slow catch-up is either a slow restart of
    consumption or a large backlog at the usual pace."""
    before = [(t, n) for t, n in samples if t <= outage.began]
    at_return = max((n for t, n in samples if t <= outage.ended), default=0)
    resumed = next(((t, n) for t, n in samples if t > outage.ended and n > at_return), None)
    if len(before) < 2 or resumed is None:
        return "throughput: not enough samples"
    rate_before = (before[-1][1] - before[0][1]) / max(before[-1][0] - before[0][0], 0.001)
    last_t, last_n = samples[-1]
    rate_after = (last_n - resumed[1]) / max(last_t - resumed[0], 0.001)
    return (
        f"applied {rate_before:.1f}/s before the outage, {rate_after:.1f}/s while catching up; "
        f"first event applied {resumed[0] - outage.ended:.1f} s after the node was back, "
        f"with {at_return} applied by then"
    )


# Enough events that some are in flight whenever the node goes down, few enough that the worker
# of a loaded two-core machine catches up within the wait.
MAX_EVENTS = 400


async def until_applied(database: Database, *, at_least: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (await applied(database))[1] < at_least:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {at_least} events applied after {seconds} s")
        await asyncio.sleep(0.5)  # another process's progress: nothing to wait on but polling


def start_background(
    role: str, args: list[str], env: dict[str, str], workdir: Path
) -> subprocess.Popen[bytes]:
    with (workdir / f"{role}.log").open("ab") as output:
        return subprocess.Popen(
            [*WITH_BENCH_TASKS, *args], env=env, cwd=ROOT, stdout=output, stderr=output
        )


async def applied(database: Database) -> tuple[int, int]:
    async with database.engine.connect() as connection:
        total = await connection.scalar(text("SELECT count(*) FROM bench_applied"))
        distinct = await connection.scalar(
            text("SELECT count(DISTINCT event_id) FROM bench_applied")
        )
    return int(total or 0), int(distinct or 0)


# --- main --------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kill-api", action="store_true")
    parser.add_argument("--restart-postgres", action="store_true")
    parser.add_argument("--stop-redis", action="store_true")
    parser.add_argument("--stop-rabbitmq", action="store_true")
    parser.add_argument("--all", action="store_true", help="every scenario")
    parser.add_argument("--kills", type=int, default=5, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds a server stays down")
    parser.add_argument("--connections", type=int, default=4, choices=range(1, 33), metavar="1..32")
    parser.add_argument(
        "--database",
        choices=["postgresql", "sqlite"],
        default="postgresql",
        help="for kill-api, stop-redis, stop-rabbitmq (restart-postgres: always)",
    )
    options = parser.parse_args(argv)
    if not 1 <= options.outage <= 60:
        parser.error("--outage must be 1 to 60 seconds")
    if options.all:
        options.kill_api = options.restart_postgres = options.stop_redis = True
        options.stop_rabbitmq = True
    if not (
        options.kill_api or options.restart_postgres or options.stop_redis or options.stop_rabbitmq
    ):
        parser.error("name at least one scenario (or --all)")
    return options


@contextmanager
def scenario_database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir}/chaos.db"
        return
    postgres = PrivatePostgres()
    try:
        yield postgres.url
    finally:
        postgres.remove()


async def run(options: argparse.Namespace) -> int:
    print(f"load average: {load_average()}", flush=True)
    results: dict[str, bool] = {}
    scenarios: list[tuple[str, bool, Callable[[Path], Awaitable[bool]]]] = [
        ("kill-api", options.kill_api, lambda w: with_database(w, options, kill_api)),
        ("restart-postgres", options.restart_postgres, lambda w: restart_postgres(options, w)),
        ("stop-redis", options.stop_redis, lambda w: with_database(w, options, stop_redis)),
        (
            "stop-rabbitmq",
            options.stop_rabbitmq,
            lambda w: with_database(w, options, stop_rabbitmq),
        ),
    ]
    for name, wanted, scenario in scenarios:
        if wanted:
            workdir = Path(tempfile.mkdtemp(prefix=f"skilltree-chaos-{name}-"))
            results[name] = await scenario(workdir)
            if results[name]:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                print(f"{name}: logs kept in {workdir}")
    print(f"load average: {load_average()}")
    for name, passed in results.items():
        print(f"{name}: {'as expected' if passed else 'NOT AS EXPECTED'}")
    return 0 if all(results.values()) else 1


async def with_database(
    workdir: Path,
    options: argparse.Namespace,
    scenario: Callable[[argparse.Namespace, Path, str], Awaitable[bool]],
) -> bool:
    with scenario_database(options.database, workdir) as url:
        return await scenario(options, workdir, url)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(run(parse())))
