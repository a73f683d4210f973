"""`make bench`: skilltree in its production shape, measured against two baselines in one run.

On loopback only. The script
1. creates a throwaway PostgreSQL database, migrates it, loads the built-in roadmap, creates a
   user and gives them some progress (so there are review cards);
2. starts three servers the same way (uvicorn, one worker, uvloop + httptools): the bare ASGI
   baseline, the minimal FastAPI baseline, and skilltree on PostgreSQL + Redis with its access
   log on (written to /dev/null) and its rate limiter on with quotas too large to trip;
3. drives each endpoint with wrk at 64 connections and prints one table: req/s, p50, p99,
   non-2xx/3xx responses, and the ratio to each baseline; then each server's RSS.

Figures are only comparable within one run: the baselines are measured beside skilltree so the
ratios cancel out what the machine was doing. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
ADMIN_URL = os.environ.get(
    "SKILLTREE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SKILLTREE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery staple 42"  # noqa: S105  (a throwaway account)
HUGE_QUOTA = "1000000000/minute"  # the limiter runs, and never refuses


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # responses that were not 2xx or 3xx, and requests that got no response
    ratios: dict[str, float] = field(default_factory=dict)


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does it when root)")

    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        with (
            serve("bare", "bench.baselines:bare", {}) as bare,
            serve("fastapi", "bench.baselines:fastapi", {}) as minimal,
            serve(
                "skilltree", "skilltree.app:create_app_from_environment", env, factory=True
            ) as app,
        ):
            session = asyncio.run(sign_in(app.base))
            results = measure(bare, minimal, app, session, args)
            print_table(results)
            print()
            for server in (bare, minimal, app):
                print(f"RSS after the run, {server.name}: {server.rss_mb():.0f} MB")


# --- the endpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    cookie: str
    csrf: str
    bearer: str
    etag: str
    topic: str


def measure(
    bare: Server, minimal: Server, app: Server, s: Session, args: argparse.Namespace
) -> list[Result]:
    def run(
        name: str, url: str, headers: dict[str, str] | None = None, script: str | None = None
    ) -> Result:
        return wrk(name, url, headers or {}, script, args)

    bearer = {"Authorization": f"Bearer {s.bearer}"}
    baselines = [
        run("baseline: bare ASGI", f"{bare.base}/"),
        run("baseline: minimal FastAPI", f"{minimal.base}/"),
    ]
    tree = f"{app.base}/v1/roadmaps/backend/tree"
    results = [
        run("GET /livez", f"{app.base}/livez"),
        run("GET tree (backend)", tree),
        run("GET tree, If-None-Match (304)", tree, {"If-None-Match": s.etag}),
        run(
            "GET /v1/me/progress/backend (cookie)",
            f"{app.base}/v1/me/progress/backend",
            {"Cookie": s.cookie},
        ),
        run("GET /v1/me/progress/backend (bearer)", f"{app.base}/v1/me/progress/backend", bearer),
        run(
            "PUT /v1/me/progress/backend/{topic}",
            f"{app.base}/v1/me/progress/backend/{s.topic}",
            bearer | {"Content-Type": "application/json"},
            TOGGLE_STATUS,
        ),
        run("GET /v1/me/reviews/due", f"{app.base}/v1/me/reviews/due", bearer),
    ]
    login = run(
        "POST /v1/auth/login (argon2-bound)",
        f"{app.base}/v1/auth/login",
        {"Content-Type": "application/json"},
        LOGIN,
    )
    for result in [*results, login]:
        result.ratios = {
            "bare": result.rps / baselines[0].rps,
            "fastapi": result.rps / baselines[1].rps,
        }
    return [*baselines, *results, login]


# wrk scripts: a write that alternates between two statuses (so each request changes something),
# and a sign-in with the benchmark account.
TOGGLE_STATUS = """
local statuses = {"done", "in_progress"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", nil, nil, '{"status":"' .. statuses[n % 2 + 1] .. '"}')
end
"""
LOGIN = f"""
wrk.method = "POST"
wrk.body = '{{"email": "bench@example.org", "password": "{PASSWORD}"}}'
"""


def wrk(
    name: str, url: str, headers: dict[str, str], script: str | None, args: argparse.Namespace
) -> Result:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
    ]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    command += ["-s", lua.name, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(lua.name).unlink()
    return parse_wrk(name, output)


def parse_wrk(name: str, output: str) -> Result:
    """The figures of one `wrk --latency` run."""
    return Result(
        name=name,
        rps=float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=_latency_ms(_find(r"\s50%\s+([\d.]+\w+)", output)),
        p99_ms=_latency_ms(_find(r"\s99%\s+([\d.]+\w+)", output)),
        bad=int(_find(r"Non-2xx or 3xx responses: (\d+)", output, default="0"))
        + sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)),
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match:
        return match.group(1)
    if default is not None:
        return default
    raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")


def _latency_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


ROW = "{:<42} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}"


def print_table(results: list[Result]) -> None:
    print(ROW.format("endpoint", "req/s", "p50 ms", "p99 ms", "failed", "x bare", "x fastapi"))
    for r in results:
        bare = f"{r.ratios['bare']:.2f}" if r.ratios else "-"
        minimal = f"{r.ratios['fastapi']:.2f}" if r.ratios else "-"
        figures = (f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", r.bad, bare, minimal)
        print(ROW.format(r.name, *figures))


# --- setting the stage -------------------------------------------------------------------------


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"skilltree_bench_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def redis_prefix() -> Iterator[str]:
    prefix = f"skilltree-bench:{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def skilltree_env(database_url: str, prefix: str) -> dict[str, str]:
    return {
        "SKILLTREE_ENV": "production",
        "SKILLTREE_SECRET_KEY": secrets.token_urlsafe(32),
        "SKILLTREE_DATABASE_URL": database_url,
        "SKILLTREE_REDIS_URL": REDIS_URL,
        "SKILLTREE_REDIS_KEY_PREFIX": prefix,
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",  # plain http on loopback
        "SKILLTREE_RATE_LIMIT_AUTH": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_WRITE": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_READ": HUGE_QUOTA,
    }


def prepare(env: dict[str, str]) -> None:
    """Schema, the built-in roadmap and the benchmark account, with skilltree's own CLI."""
    with tempfile.NamedTemporaryFile("w", delete=False) as password_file:
        password_file.write(PASSWORD)
    try:
        _cli(env, "migrate", "upgrade")
        _cli(env, "roadmap", "load-builtin")
        _cli(env, "user", "create", "bench@example.org", "--name", "Bench",
             "--password-file", password_file.name)  # fmt: skip
    finally:
        Path(password_file.name).unlink()


def _cli(env: dict[str, str], *args: str) -> None:
    command = [str(BIN / "skilltree"), *args]
    done = subprocess.run(command, env=os.environ | env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"skilltree {' '.join(args)} failed: {done.stderr.strip()}")


async def sign_in(base: str) -> Session:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        credentials = {"email": "bench@example.org", "password": PASSWORD}
        login = await client.post("/v1/auth/login", json=credentials)
        login.raise_for_status()
        tokens = (await client.post("/v1/auth/token", json=credentials)).json()
        bearer = {"authorization": f"Bearer {tokens['access_token']}"}
        tree = await client.get("/v1/roadmaps/backend/tree")
        leaves = list(_leaves(tree.json()["topics"]))
        # Some finished topics, so the review queue is not empty.
        for slug in leaves[:50]:
            done = await client.put(
                f"/v1/me/progress/backend/{slug}", json={"status": "done"}, headers=bearer
            )
            done.raise_for_status()
        return Session(
            cookie=f"skilltree_session={login.cookies['skilltree_session']}",
            csrf=login.json()["csrf_token"],
            bearer=tokens["access_token"],
            etag=tree.headers["etag"],
            topic=leaves[-1],
        )


def _leaves(topics: list[dict[str, object]]) -> Iterator[str]:
    for topic in topics:
        children = topic.get("children") or []
        if children:
            yield from _leaves(children)  # type: ignore[arg-type]
        else:
            yield str(topic["slug"])


@contextmanager
def serve(name: str, app: str, env: dict[str, str], factory: bool = False) -> Iterator[Server]:
    port = _free_port()
    command = [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port)]
    command += [
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        command.append("--factory")
    process = subprocess.Popen(
        command, cwd=ROOT, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = Server(name, port, process)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            errors = server.process.stderr.read().decode() if server.process.stderr else ""
            raise RuntimeError(f"{server.name} exited: {errors}")
        try:
            httpx.get(server.base + "/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not start within 30 s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
