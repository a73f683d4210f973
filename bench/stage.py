"""Setting the stage for a benchmark: a throwaway database and Redis prefix, skilltree's
production settings, the built-in roadmap, and a signed-in benchmark account.

Everything is created fresh for a run and removed after it, so a benchmark never reads or
leaves data in a database someone else uses.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import redis

from bench.servers import BIN

# The ASGI factory every benchmark serves skilltree from, as `skilltree serve` does.
SKILLTREE_APP = "skilltree.app:create_app_from_environment"
ADMIN_URL = os.environ.get(
    "SKILLTREE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SKILLTREE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EMAIL = "bench@example.org"
PASSWORD = "correct horse battery staple 42"  # noqa: S105  (a throwaway account)
HUGE_QUOTA = "1000000000/minute"  # the limiter runs, and never refuses


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the run; yields its SQLAlchemy URL."""
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
def throwaway_sqlite() -> Iterator[str]:
    """A new SQLite file for the run (the embedded default); yields its SQLAlchemy URL."""
    with tempfile.TemporaryDirectory(prefix="skilltree-bench-") as directory:
        yield f"sqlite+aiosqlite:///{directory}/skilltree.db"


def sqlite_path(database_url: str) -> str:
    """The file of a sqlite+aiosqlite:/// URL."""
    return database_url.removeprefix("sqlite+aiosqlite:///")


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL skilltree reads, as the DSN asyncpg connects with."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix for the run; its keys are deleted afterwards."""
    prefix = f"skilltree-bench:{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def skilltree_env(database_url: str, prefix: str | None) -> dict[str, str]:
    """Production settings on the database (and on Redis under `prefix`; without one, none, as
    the embedded default runs), with rate limits too large to trip."""
    redis = (
        {}
        if prefix is None
        else {"SKILLTREE_REDIS_URL": REDIS_URL, "SKILLTREE_REDIS_KEY_PREFIX": prefix}
    )
    return {
        "SKILLTREE_ENV": "production",
        "SKILLTREE_SECRET_KEY": secrets.token_urlsafe(32),
        "SKILLTREE_DATABASE_URL": database_url,
        **redis,
        "SKILLTREE_AUTH_COOKIE_SECURE": "false",  # plain http on loopback
        "SKILLTREE_RATE_LIMIT_AUTH": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_WRITE": HUGE_QUOTA,
        "SKILLTREE_RATE_LIMIT_READ": HUGE_QUOTA,
        # The longest an access token may live: the benchmark signs in once, and a run with
        # several rounds of two workers outlasts the default ten minutes (the bearer reads
        # then measured 401s).
        "SKILLTREE_AUTH_ACCESS_TOKEN_MINUTES": "60",
    }


def prepare(
    env: dict[str, str],
    *,
    builtin_roadmap: bool = True,
    cli: Callable[..., None] | None = None,
) -> None:
    """Schema, the built-in roadmap and the benchmark account, with skilltree's own CLI:
    `cli(env, *args)` runs one command (default: the `skilltree` program; the tests run the
    commands in their own process, which has skilltree imported already)."""
    run = cli or skilltree_cli
    with tempfile.NamedTemporaryFile("w", delete=False) as password_file:
        password_file.write(PASSWORD)
    try:
        run(env, "migrate", "upgrade")
        if builtin_roadmap:
            run(env, "roadmap", "load-builtin")
        run(env, "user", "create", EMAIL, "--name", "Bench",
            "--password-file", password_file.name)  # fmt: skip
    finally:
        Path(password_file.name).unlink()


def skilltree_cli(env: dict[str, str], *args: str) -> None:
    command = [str(BIN / "skilltree"), *args]
    done = subprocess.run(command, env=os.environ | env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"skilltree {' '.join(args)} failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class Session:
    cookie: str
    csrf: str
    bearer: str
    etag: str
    topic: str  # a leaf of the built-in roadmap that the benchmark account may change


async def sign_in(base: str, finished_topics: int = 50) -> Session:
    """Sign the benchmark account in both ways and finish some topics of the built-in roadmap
    (so its review queue has cards)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await sign_in_with(client, finished_topics)


async def sign_in_with(client: httpx.AsyncClient, finished_topics: int = 50) -> Session:
    """`sign_in` through the given client."""
    credentials = {"email": EMAIL, "password": PASSWORD}
    login = await client.post("/v1/auth/login", json=credentials)
    login.raise_for_status()
    tokens = (await client.post("/v1/auth/token", json=credentials)).json()
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    tree = await client.get("/v1/roadmaps/backend/tree")
    leaves = list(leaf_slugs(tree.json()["topics"]))
    for slug in leaves[:finished_topics]:
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


def leaf_slugs(topics: list[dict[str, object]]) -> Iterator[str]:
    """The slugs of the topics without children, in tree order."""
    for topic in topics:
        children = topic.get("children") or []
        if children:
            yield from leaf_slugs(children)  # type: ignore[arg-type]
        else:
            yield str(topic["slug"])
