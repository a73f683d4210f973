"""Signing users up and in through the real API, as a browser would."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from skilltree.accounts.sessions import DatabaseSessionStore, RedisSessionStore
from skilltree.platform.mail import read_outbox

PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r"token=([A-Za-z0-9_-]{20,})")


@dataclass
class Browser:
    """A signed-in client: its cookie jar holds the session, csrf_token goes on writes."""

    client: httpx.AsyncClient
    csrf_token: str

    @property
    def write_headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf_token}


def text_of(message: EmailMessage) -> str:
    """The plain-text part of an e-mail (they are multipart: text and HTML)."""
    part = message.get_body(("plain",))
    assert part is not None, "the e-mail has no text part"
    return str(part.get_content())


def last_token(outbox: Path) -> str:
    message = read_outbox(outbox)[-1]
    match = TOKEN.search(text_of(message))
    assert match, "the last e-mail carries no token"
    return match.group(1)


async def register_and_verify(
    client: httpx.AsyncClient, outbox: Path, email: str = "ada@example.org", name: str = "Ada"
) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": name}
    )
    assert response.status_code == 202, response.text
    verified = await client.post("/v1/auth/verify-email", json={"token": last_token(outbox)})
    assert verified.status_code == 204, verified.text


async def sign_in(
    client: httpx.AsyncClient, email: str = "ada@example.org", password: str = PASSWORD
) -> Browser:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return Browser(client, response.json()["csrf_token"])


async def user_id(person: Browser) -> int:
    """The signed-in person's user id, as the API reports it."""
    return int((await person.client.get("/v1/me")).json()["id"])


async def bearer_headers(person: Browser) -> dict[str, str]:
    """An Authorization header for the signed-in person, as their API client would send it:
    an access token from signing in with the password (a new token family)."""
    email = (await person.client.get("/v1/me")).json()["email"]
    response = await person.client.post(
        "/v1/auth/token", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def api_key(browser: Browser, scopes: list[str]) -> tuple[dict[str, str], int]:
    """A personal API key of the signed-in person with these scopes: its Authorization header
    and its id."""
    response = await browser.client.post(
        "/v1/me/api-keys",
        json={"name": "+".join(scopes), "scopes": scopes},
        headers=browser.write_headers,
    )
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['key']}"}, response.json()["id"]


def store_questions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the digest of every session a session store (Redis or the database) is
    asked whether it still holds, in order: what a request's authentication costs the store."""
    asked: list[str] = []
    for store in (RedisSessionStore, DatabaseSessionStore):
        monkeypatch.setattr(store, "still_stored", _counting(store.still_stored, asked))
    return asked


def _counting(
    still_stored: Callable[[Any, str], Awaitable[bool]], asked: list[str]
) -> Callable[[Any, str], Awaitable[bool]]:
    async def counted(store: Any, token_hash: str) -> bool:
        asked.append(token_hash)
        return await still_stored(store, token_hash)

    return counted
