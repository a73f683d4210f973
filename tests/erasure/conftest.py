"""Account deletion fixtures: a person with something in every table that names them, row
counts per table, and the DELETE /v1/me call itself."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from skilltree.models import Base
from skilltree.platform.db import Database
from tests.files.conftest import png, upload
from tests.search.conftest import (
    PUBLIC_ROADMAP,
    add_resource,
    import_roadmap,
    secret_roadmap,
    write_note,
)
from tests.support.accounts import PASSWORD, Browser, bearer_headers
from tests.support.progress import mark

People = Callable[[str], Awaitable[Browser]]

# The columns by which a table names the person a row belongs to.
OWNER_COLUMNS = ("user_id", "owner_id")


async def delete_me(
    person: Browser,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    return await person.client.request(
        "DELETE",
        "/v1/me",
        json={"password": password, **extra},
        headers=person.write_headers if headers is None else headers,
    )


async def rows_naming(database: Database, user: int) -> dict[str, int]:
    """How many rows of each table name the user, for every table with such a column (the
    audit log's included: it is checked on its own)."""
    counts: dict[str, int] = {}
    async with database.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for column in OWNER_COLUMNS:
                if column in table.c:
                    query = select(func.count()).where(table.c[column] == user)
                    counts[f"{table.name}.{column}"] = int(await session.scalar(query) or 0)
    return counts


async def fill_every_table(person: Browser, roadmap_slug: str = "web") -> None:
    """Progress, a note with an attachment, a resource, a review card, a private roadmap, an
    API key, an access token, notification settings and a partial resumable upload."""
    await import_roadmap(person, secret_roadmap(f"{roadmap_slug}-diary", "diary"), "private")
    await write_note(person, "web", "retries", "see the diagram")
    assert (await upload(person, png())).status_code == 201
    await add_resource(person, "web", "retries", "Backoff", "https://example.org/backoff")
    assert (await mark(person, "retries", "done")).status_code == 200
    key = await person.client.post(
        "/v1/me/api-keys",
        json={"name": "sync", "scopes": ["progress:read"]},
        headers=person.write_headers,
    )
    assert key.status_code == 201, key.text
    settings = await person.client.put(
        "/v1/me/notifications", json={"review_reminders": False}, headers=person.write_headers
    )
    assert settings.status_code == 200, settings.text
    await start_an_upload(person)


async def start_an_upload(person: Browser) -> None:
    """A resumable upload left half-way: its first part is stored, the rest never comes."""
    headers = await bearer_headers(person) | {"Tus-Resumable": "1.0.0"}
    metadata = {"roadmap": "web", "topic": "retries", "filename": "notes.txt"}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())
    created = await person.client.post(
        "/v1/me/uploads",
        headers=headers | {"Upload-Length": str(64 * 1024), "Upload-Metadata": encoded},
    )
    assert created.status_code == 201, created.text
    part = await person.client.patch(
        created.headers["location"],
        content=b"a line of notes\n" * 1024,
        headers=headers | {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert part.status_code == 204, part.text


async def author_of_the_web_roadmap(people: People) -> Browser:
    person = await people("Ada")
    await import_roadmap(person, PUBLIC_ROADMAP)
    return person
