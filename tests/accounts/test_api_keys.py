"""Personal API keys: shown once, stored hashed, scoped, expiring, revocable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import select

from skilltree.accounts.dependencies import require_scope
from skilltree.accounts.models import ApiKey
from skilltree.identity import Principal, Scope
from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from tests.support.accounts import Browser, register_and_verify, sign_in

ProgressWriter = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_WRITE))]


async def create_key(browser: Browser, **body: object) -> dict[str, object]:
    payload = {"name": "ci script", "scopes": ["progress:read"]} | body
    response = await browser.client.post(
        "/v1/me/api-keys", json=payload, headers=browser.write_headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def browser(client: httpx.AsyncClient, outbox: Path) -> Browser:
    await register_and_verify(client, outbox)
    return await sign_in(client)


def bearer(key: object) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_key_is_shown_once_and_signs_requests_in(
    browser: Browser, second_client: httpx.AsyncClient
) -> None:
    created = await create_key(browser)

    me = await second_client.get("/v1/me", headers=bearer(created["key"]))
    listed = (await browser.client.get("/v1/me/api-keys")).json()["items"]

    assert str(created["key"]).startswith(f"sk_{created['prefix']}_")
    assert me.status_code == 200
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None


async def test_only_a_digest_of_the_secret_is_stored(browser: Browser, database: Database) -> None:
    created = await create_key(browser)

    async with database.sessionmaker() as session:
        stored = (await session.execute(select(ApiKey))).scalar_one()

    # sk_<prefix>_<secret>: the prefix never holds "_", the url-safe secret may.
    secret = str(created["key"]).removeprefix("sk_").partition("_")[2]
    assert len(secret) >= 32
    assert secret not in stored.secret_hash
    assert len(stored.secret_hash) == 64


async def test_a_key_cannot_manage_the_account(
    browser: Browser, second_client: httpx.AsyncClient
) -> None:
    created = await create_key(browser, scopes=["admin"])

    minted = await second_client.post(
        "/v1/me/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=bearer(created["key"])
    )
    password = await second_client.post(
        "/v1/me/password",
        json={"current_password": "x", "new_password": "y" * 20},
        headers=bearer(created["key"]),
    )

    assert minted.status_code == 403
    assert minted.json()["type"] == "/problems/insufficient-scope"
    assert password.status_code == 403


async def test_a_revoked_key_stops_working_at_once(
    browser: Browser, second_client: httpx.AsyncClient
) -> None:
    created = await create_key(browser)

    revoked = await browser.client.delete(
        f"/v1/me/api-keys/{created['id']}", headers=browser.write_headers
    )

    assert revoked.status_code == 204
    assert (await second_client.get("/v1/me", headers=bearer(created["key"]))).status_code == 401


async def test_a_key_expires(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    created = await create_key(browser, expires_in_days=30)
    clock.advance(days=30)

    assert (await second_client.get("/v1/me", headers=bearer(created["key"]))).status_code == 401


@pytest.mark.parametrize(
    "forged",
    ["sk_nothere_secret", "sk_", "sk_onlyprefix", "sk__", "not-a-key"],
)
async def test_malformed_or_unknown_keys_are_401(
    second_client: httpx.AsyncClient, forged: str
) -> None:
    assert (await second_client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_a_wrong_secret_with_a_real_prefix_is_401(
    browser: Browser, second_client: httpx.AsyncClient
) -> None:
    created = await create_key(browser)

    forged = f"sk_{created['prefix']}_{'A' * 43}"

    assert (await second_client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_unknown_scopes_are_refused(browser: Browser) -> None:
    response = await browser.client.post(
        "/v1/me/api-keys",
        json={"name": "x", "scopes": ["everything"]},
        headers=browser.write_headers,
    )

    assert response.status_code == 422


async def test_another_users_key_is_a_404(
    browser: Browser, second_client: httpx.AsyncClient, outbox: Path
) -> None:
    created = await create_key(browser)
    await register_and_verify(second_client, outbox, email="bob@example.org", name="Bob")
    bob = await sign_in(second_client, email="bob@example.org")

    response = await second_client.delete(
        f"/v1/me/api-keys/{created['id']}", headers=bob.write_headers
    )

    assert response.status_code == 404


async def test_scopes_limit_what_a_key_may_do(
    app: FastAPI, browser: Browser, second_client: httpx.AsyncClient
) -> None:
    @app.get("/scoped-probe")
    async def probe(current: ProgressWriter) -> dict[str, int]:
        return {"user": current.user_id}

    reader = await create_key(browser, scopes=["progress:read"])
    writer = await create_key(browser, scopes=["progress:write"])
    admin = await create_key(browser, scopes=["admin"])

    assert (
        await second_client.get("/scoped-probe", headers=bearer(reader["key"]))
    ).status_code == 403
    assert (
        await second_client.get("/scoped-probe", headers=bearer(writer["key"]))
    ).status_code == 200
    assert (
        await second_client.get("/scoped-probe", headers=bearer(admin["key"]))
    ).status_code == 200
    assert (
        await browser.client.get("/scoped-probe")
    ).status_code == 200  # a session has every scope
