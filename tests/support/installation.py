"""A small but complete installation on a real database, written through the API as a
deployment would write it: a learner with an account, sessions and audit events, a roadmap of
nested topics (rows referring to rows of their own table), progress, a note, a private fork."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from skilltree.app import create_app
from skilltree.platform.config import (
    AppSettings,
    AuthSettings,
    DatabaseSettings,
    MailSettings,
    RateLimitSettings,
    Settings,
)
from tests.support.accounts import Browser, register_and_verify, sign_in
from tests.support.databases import temporary_mariadb_database, temporary_postgres_database
from tests.support.progress import WEB, import_roadmap, mark

NOTE_PATH = "/v1/me/progress/web/etags/note"


@asynccontextmanager
async def empty_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of the backend (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/{uuid.uuid4().hex}.db"
    elif backend == "postgresql":
        async with temporary_postgres_database() as url:
            yield url
    else:
        async with temporary_mariadb_database() as url:
            yield url


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(
        app=AppSettings(env="test"),
        database=DatabaseSettings(url=url),
        mail=MailSettings(outbox_dir=tmp_path / "outbox"),
        auth=AuthSettings(cookie_secure=False, allowed_origins=["http://test"]),
        rate_limit=RateLimitSettings(enabled=False),
    )


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def populate(settings: Settings) -> None:
    """Write an installation's worth of rows into a migrated database."""
    async with served(settings) as client:
        await register_and_verify(
            client, settings.mail.outbox_dir, email="ada@example.org", name="Ada Lovelace"
        )
        ada: Browser = await sign_in(client, email="ada@example.org")
        await import_roadmap(ada, WEB, visibility="public")
        assert (await mark(ada, "etags", "done")).status_code == 200
        assert (await mark(ada, "status-codes", "in_progress")).status_code == 200
        current = (await ada.client.get(NOTE_PATH)).headers["etag"]
        note = await ada.client.put(
            NOTE_PATH,
            json={"markdown": "Weak vs strong validators — «W/» prefix 🚀"},
            headers=ada.write_headers | {"if-match": current},
        )
        assert note.status_code in (200, 201), note.text
        fork = await ada.client.post(
            "/v1/roadmaps/web/forks", json={"slug": "my-web"}, headers=ada.write_headers
        )
        assert fork.status_code in (200, 201), fork.text
