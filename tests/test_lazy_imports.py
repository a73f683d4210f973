"""Optional machinery loads only where it is configured or first used.

A library imported by a worker stays resident for the worker's life. Alembic is for the
commands that migrate, taskiq and aio-pika for the process that first publishes (and only the
configured broker's client), httpx and joserfc for the first sign-in through an OpenID provider,
Pillow for the first image, nh3 and markdown-it for the first note, markdown-it and PyYAML for
the first roadmap upload (PyYAML also for the built-in roadmap's files), filetype for the first
file uploaded, MariaDB's dialect where MariaDB is the database, grpc for `skilltree grpc`,
strawberry for the first GraphQL request. Each test starts a fresh interpreter, as a server
does, so that what the test suite itself imported does not count; requests are sent as raw ASGI
messages, so that no HTTP client library is loaded by the test either.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from skilltree.graphql import router as graphql_router_module
from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.databases import temporary_postgres_database
from tests.support.redis import REDIS_URL, isolated_prefix

# Never loaded by a web worker that serves the requests below, whatever its database.
OPTIONAL = {"alembic", "mako", "taskiq", "taskiq_aio_pika", "aio_pika", "httpx", "joserfc"}
OPTIONAL |= {"authlib", "PIL", "grpc", "nh3"}
# rich (with Pygments) formats the CLI's progress bars; a worker's JSON logs never use it.
OPTIONAL |= {"rich", "pygments"}
OPTIONAL |= {"markdown_it", "mdit_py_plugins", "yaml", "filetype", "sqlalchemy.dialects.mysql"}
GRAPHQL = {"strawberry", "graphql"}

# A worker as uvicorn runs it: the app from the environment, its lifespan, then the requests,
# each as the ASGI messages a server would send.
SERVE = """
import asyncio, json, sys
from skilltree.app import create_app_from_environment

async def call(app, method, path, body):
    payload = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
        "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode())],
    }
    pending = [{"type": "http.request", "body": payload, "more_body": False}]
    statuses, chunks = [], []

    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return statuses[0], b"".join(chunks).decode()

async def serve(requests):
    app = create_app_from_environment()
    built = sorted(sys.modules)
    answers, loaded = [], []
    async with app.router.lifespan_context(app):
        for method, path, body in requests:
            answers.append(await call(app, method, path, body))
            loaded.append(sorted(sys.modules))
    return built, answers, loaded

built, answers, loaded = asyncio.run(serve(json.loads(sys.argv[1])))
print(json.dumps({"built": built, "answers": answers, "loaded": loaded}))
"""

BROWSING = [
    ("GET", "/livez", None),
    ("GET", "/startupz", None),
    ("GET", "/readyz", None),
    ("GET", "/v1/roadmaps", None),
    ("GET", "/v1/auth/oidc/providers", None),
    ("POST", "/v1/auth/login", {"email": "nobody@example.com", "password": "x" * 16}),
]
BROWSING_STATUSES = [200, 200, 200, 200, 200, 401]
TYPENAME = ("POST", "/graphql", {"query": "{ __typename }"})
TYPENAME_ANSWER = {"data": {"__typename": "Query"}}


def worker_environment(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    return os.environ | {
        "SKILLTREE_ENV": "production",
        "SKILLTREE_SECRET_KEY": "a-production-secret-of-32-characters!",
        "SKILLTREE_DATABASE_URL": database_url,
        "SKILLTREE_MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "SKILLTREE_LOG_ACCESS_LOG": "false",
        **settings,
    }


def serve(database_url: str, tmp_path: Path, requests: list[Any], **settings: str) -> Any:
    """Serve `requests` in a fresh production worker: the modules loaded once the app was
    built, the answers (status, body) and the modules loaded after each request."""
    done = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(requests)],
        env=worker_environment(database_url, tmp_path, **settings),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    return (
        set(report["built"]),
        [tuple(answer) for answer in report["answers"]],
        [set(modules) for modules in report["loaded"]],
    )


async def migrated(url: str) -> str:
    engine = create_engine(DatabaseSettings(url=url))
    await migrations.upgrade(engine)
    await engine.dispose()
    return url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A migrated database of the worker's own: what it commits must not reach other tests."""
    return await migrated(f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}")


def statuses(answers: list[tuple[int, str]]) -> list[int]:
    return [status for status, _body in answers]


def test_the_embedded_default_serves_without_the_optional_libraries(
    sqlite_url: str, tmp_path: Path
) -> None:
    built, answers, loaded = serve(sqlite_url, tmp_path, BROWSING)

    assert statuses(answers) == BROWSING_STATUSES
    assert OPTIONAL & (built | loaded[-1]) == set()


@pytest.mark.postgres
@pytest.mark.redis
async def test_postgresql_and_redis_serve_without_the_optional_libraries(tmp_path: Path) -> None:
    async with temporary_postgres_database() as url, isolated_prefix() as prefix:
        built, answers, loaded = serve(
            await migrated(url),
            tmp_path,
            BROWSING,
            SKILLTREE_REDIS_URL=REDIS_URL,
            SKILLTREE_REDIS_KEY_PREFIX=prefix,
        )

    assert statuses(answers) == BROWSING_STATUSES
    assert OPTIONAL & (built | loaded[-1]) == set()


def test_strawberry_loads_only_where_graphql_is_served(sqlite_url: str, tmp_path: Path) -> None:
    built, answers, loaded = serve(
        sqlite_url, tmp_path, [*BROWSING, TYPENAME], SKILLTREE_GRAPHQL_ENABLED="false"
    )

    assert statuses(answers) == [*BROWSING_STATUSES, 404]
    assert GRAPHQL & (built | loaded[-1]) == set()


def test_strawberry_loads_on_the_first_graphql_request(sqlite_url: str, tmp_path: Path) -> None:
    built, answers, loaded = serve(sqlite_url, tmp_path, [*BROWSING, TYPENAME, TYPENAME])

    assert statuses(answers) == [*BROWSING_STATUSES, 200, 200]
    assert GRAPHQL & (built | loaded[len(BROWSING) - 1]) == set()
    assert GRAPHQL.issubset(loaded[len(BROWSING)])
    assert json.loads(answers[-2][1]) == json.loads(answers[-1][1]) == TYPENAME_ANSWER


# A worker whose first GraphQL use is a WebSocket (subscriptions): it opens one and says
# connection_init without a credential, as a client of graphql-transport-ws does; strawberry's
# handler accepts the protocol, then refuses the anonymous caller (graphql/sockets.py).
SOCKET = """
import asyncio, json, sys
from skilltree.app import create_app_from_environment

async def main():
    app = create_app_from_environment()
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"sec-websocket-protocol", b"graphql-transport-ws")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
        "subprotocols": ["graphql-transport-ws"],
    }
    incoming = asyncio.Queue()
    incoming.put_nowait({"type": "websocket.connect"})
    incoming.put_nowait({"type": "websocket.receive", "text": '{"type": "connection_init"}'})
    sent, answered = [], asyncio.Event()

    async def send(message):
        sent.append(message)
        if message["type"] in ("websocket.send", "websocket.close"):
            answered.set()

    async with app.router.lifespan_context(app):
        built = sorted(sys.modules)
        socket = asyncio.create_task(app(scope, incoming.get, send))
        await asyncio.wait_for(answered.wait(), 60)
        incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(socket, 60)
    return built, sent

built, sent = asyncio.run(main())
print(json.dumps({"built": built, "sent": sent, "used": sorted(sys.modules)}))
"""


def test_a_subscription_socket_can_be_the_first_graphql_use(
    sqlite_url: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SOCKET],
        env=worker_environment(sqlite_url, tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])

    assert GRAPHQL & set(report["built"]) == set()
    accepted, closed = report["sent"][:2]
    assert (accepted["type"], accepted["subprotocol"]) == (
        "websocket.accept",
        "graphql-transport-ws",
    )
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
    assert GRAPHQL.issubset(report["used"])


async def test_concurrent_first_graphql_requests_build_strawberry_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[object] = []
    build = graphql_router_module.graphql_router

    def counted(*arguments: Any) -> Any:
        builds.append(arguments)
        return build(*arguments)

    monkeypatch.setattr(graphql_router_module, "graphql_router", counted)
    body = TYPENAME[2]

    responses = await asyncio.gather(*(client.post("/graphql", json=body) for _ in range(5)))

    assert [response.status_code for response in responses] == [200] * 5
    assert all(response.json() == TYPENAME_ANSWER for response in responses)
    assert len(builds) == 1


# The queue of a process, built as its lifespan builds it; its broker when first used.
QUEUE = """
import json, sys
from skilltree.platform.clock import SystemClock
from skilltree.platform.config import load_settings
from skilltree.platform.db import Database
from skilltree.platform.queue.client import build_queue

settings = load_settings()
queue = build_queue(settings.queue, Database.from_settings(settings.database), SystemClock())
built = sorted(sys.modules)
broker = type(queue.broker).__name__
print(json.dumps({"built": built, "broker": broker, "used": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    ("broker", "expected", "loads", "never"),
    [
        ("database", "DatabaseBroker", {"taskiq"}, {"aio_pika", "taskiq_aio_pika"}),
        ("rabbitmq", "RabbitMQBroker", {"taskiq", "aio_pika", "taskiq_aio_pika"}, set()),
    ],
)
def test_the_queue_loads_taskiq_and_only_its_brokers_client_when_first_used(
    tmp_path: Path, broker: str, expected: str, loads: set[str], never: set[str]
) -> None:
    environment = os.environ | {
        "SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}",
        "SKILLTREE_QUEUE_BROKER": broker,
    }
    done = subprocess.run(
        [sys.executable, "-c", QUEUE], env=environment, capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout.splitlines()[-1])

    assert report["broker"] == expected
    assert (loads | never).isdisjoint(report["built"])
    assert loads.issubset(report["used"])
    assert never.isdisjoint(report["used"])


def test_the_revisions_read_without_alembic_are_alembics() -> None:
    scripts = ScriptDirectory.from_config(migrations.alembic_config())

    assert migrations.head_revision() == scripts.get_current_head()
    assert migrations.known_revisions() == {script.revision for script in scripts.walk_revisions()}


async def test_the_current_revision_read_without_alembic_is_alembics(tmp_path: Path) -> None:
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"))

    async def alembics() -> str | None:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    try:
        assert await migrations.current_revision(engine) is None
        assert await alembics() is None
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == await alembics()
        assert await migrations.current_revision(engine) == migrations.head_revision()
        async with engine.begin() as connection:  # two heads stamped: not one line
            await connection.execute(text("INSERT INTO alembic_version VALUES ('elsewhere')"))
        with pytest.raises(migrations.RevisionError):
            await migrations.current_revision(engine)
    finally:
        await engine.dispose()


# Each lazy path in a fresh interpreter: what it loads, and that it works.
FIRST_USE = """
import json, sys
import skilltree.app  # what a worker imports
from skilltree.files.sniffing import sniff
from skilltree.roadmaps.builtin.status import load_status_file
from skilltree.roadmaps.importing import parse_roadmap

before = sorted(sys.modules)
from skilltree.progress.rendering import render_note  # where a note is saved or previewed

results = {
    "markdown": parse_roadmap(b"# Backend\\n\\n- [ ] HTTP\\n", "markdown").document.title,
    "yaml": parse_roadmap(b"title: Backend\\ntopics: [{title: HTTP}]\\n", "yaml").document.title,
    "note": render_note("*hi*"),
    "sniffed": sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(32)).content_type,
    "status": len(load_status_file().planned) >= 0,
}
print(json.dumps({"before": before, "results": results, "after": sorted(sys.modules)}))
"""


def test_parsers_markdown_and_file_types_load_with_their_first_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_USE], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    loads = {"markdown_it", "mdit_py_plugins", "yaml", "filetype"}

    assert loads.isdisjoint(report["before"])
    assert report["results"] == {
        "markdown": "Backend",
        "yaml": "Backend",
        "note": "<p><em>hi</em></p>\n",
        "sniffed": "image/png",
        "status": True,
    }
    assert loads.issubset(report["after"])
