"""DELETE /v1/me: re-authentication, what is removed, and what may refuse it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from skilltree.accounts.models import User
from skilltree.audit.models import SecurityEvent
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import FilesSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.mail import read_outbox
from tests.accounts.test_mfa import enrol
from tests.erasure.conftest import (
    People,
    author_of_the_web_roadmap,
    delete_me,
    fill_every_table,
    rows_naming,
)
from tests.support.accounts import (
    PASSWORD,
    Browser,
    bearer_headers,
    register_and_verify,
    sign_in,
    text_of,
    user_id,
)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"files": FilesSettings(storage_dir=tmp_path / "files")})


@pytest.fixture
async def ada(people: People) -> Browser:
    return await author_of_the_web_roadmap(people)


async def test_a_wrong_password_is_refused_and_changes_nothing(
    ada: Browser, database: Database
) -> None:
    await fill_every_table(ada)
    user = await user_id(ada)
    before = await rows_naming(database, user)

    refused = await delete_me(ada, password="not my password")

    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/invalid-credentials")
    after = await rows_naming(database, user)
    # Only the failed attempt is added, to the audit log, as after any wrong password.
    assert after.pop("security_events.user_id") == before.pop("security_events.user_id") + 1
    assert after == before
    assert (await ada.client.get("/v1/me")).status_code == 200


async def test_a_session_older_than_five_minutes_needs_the_password(
    ada: Browser, clock: FrozenClock
) -> None:
    clock.advance(minutes=5, seconds=1)

    response = await ada.client.request("DELETE", "/v1/me", json={}, headers=ada.write_headers)

    assert response.status_code == 401
    assert response.json()["type"].endswith("/recent-sign-in-required")
    assert (await ada.client.get("/v1/me")).status_code == 200
    assert (await delete_me(ada)).status_code == 204  # the password still does, at any age


async def test_a_cookie_session_needs_the_csrf_token(ada: Browser) -> None:
    response = await delete_me(ada, headers={})

    assert response.status_code == 403
    assert (await ada.client.get("/v1/me")).status_code == 200


async def test_the_account_is_deleted_and_every_sign_in_ends(
    ada: Browser, app: FastAPI, outbox: Path
) -> None:
    bearer = await bearer_headers(ada)

    deleted = await delete_me(ada)

    assert deleted.status_code == 204, deleted.text
    assert (await ada.client.get("/v1/me")).status_code == 401
    assert (await ada.client.get("/v1/me", headers=bearer)).status_code == 401
    login = await ada.client.post(
        "/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert login.status_code == 401
    goodbye = read_outbox(outbox)[-1]
    assert goodbye["to"] == "ada@example.org"
    assert goodbye["subject"] == "Your skilltree account was deleted"
    assert "deleted" in text_of(goodbye)


async def test_the_address_can_sign_up_again_to_a_new_empty_account(
    ada: Browser, outbox: Path
) -> None:
    await fill_every_table(ada)
    before = (await ada.client.get("/v1/me/progress/web")).json()  # cached under Ada's id
    assert before["summary"]["percent_done"] > 0
    assert (await delete_me(ada)).status_code == 204

    await register_and_verify(ada.client, outbox, email="ada@example.org", name="Ada Again")
    again = await sign_in(ada.client, email="ada@example.org")

    assert (await again.client.get("/v1/me")).json()["display_name"] == "Ada Again"
    # SQLite may give the new account the old id: nothing of the old one may show through.
    progress = (await again.client.get("/v1/me/progress/web")).json()
    assert progress["summary"]["percent_done"] == 0, progress
    assert (await again.client.get("/v1/me/api-keys")).json()["items"] == []
    attachments = "/v1/me/progress/web/retries/note/attachments"
    assert (await again.client.get(attachments)).json()["items"] == []


async def test_an_access_token_may_delete_the_account(
    ada: Browser, second_client: httpx.AsyncClient
) -> None:
    bearer = await bearer_headers(ada)

    deleted = await second_client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=bearer
    )

    assert deleted.status_code == 204, deleted.text
    assert (await ada.client.get("/v1/me")).status_code == 401


async def test_an_access_token_needs_the_password_however_new(
    ada: Browser, second_client: httpx.AsyncClient
) -> None:
    bearer = await bearer_headers(ada)

    refused = await second_client.request("DELETE", "/v1/me", json={}, headers=bearer)

    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/recent-sign-in-required")
    assert (await ada.client.get("/v1/me")).status_code == 200


async def test_an_api_key_may_not_delete_the_account(
    ada: Browser, second_client: httpx.AsyncClient
) -> None:
    created = await ada.client.post(
        "/v1/me/api-keys",
        json={
            "name": "everything",
            "scopes": ["progress:read", "progress:write", "roadmaps:write"],
        },
        headers=ada.write_headers,
    )
    key = created.json()["key"]

    refused = await second_client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers={"authorization": f"Bearer {key}"}
    )

    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert (await ada.client.get("/v1/me")).status_code == 200


async def test_with_mfa_on_a_current_code_is_needed_too(ada: Browser, clock: FrozenClock) -> None:
    totp, _ = await enrol(ada, clock)

    without = await delete_me(ada)
    wrong = await delete_me(ada, code="000000")

    assert without.status_code == wrong.status_code == 401
    assert without.json()["type"].endswith("/second-factor-required")
    assert (await ada.client.get("/v1/me")).status_code == 200
    deleted = await delete_me(ada, code=totp.at(clock.now()))
    assert deleted.status_code == 204, deleted.text


async def test_the_last_owner_of_an_organisation_is_refused_until_ownership_moves(
    ada: Browser, people: People, database: Database
) -> None:
    created = await ada.client.post(
        "/v1/orgs", json={"slug": "guild", "name": "Guild"}, headers=ada.write_headers
    )
    assert created.status_code == 201, created.text
    before = await rows_naming(database, await user_id(ada))

    refused = await delete_me(ada)

    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/last-owner")
    assert await rows_naming(database, await user_id(ada)) == before
    removed = await ada.client.delete("/v1/orgs/guild", headers=ada.write_headers)
    assert removed.status_code == 204, removed.text
    assert (await delete_me(ada)).status_code == 204


async def test_the_audit_log_keeps_a_pseudonymous_record(ada: Browser, database: Database) -> None:
    user = await user_id(ada)

    assert (await delete_me(ada)).status_code == 204

    async with database.sessionmaker() as session:
        events = (await session.scalars(select(SecurityEvent))).all()
    [record] = [event for event in events if event.kind == "account.deleted"]
    assert record.user_id is None
    assert record.details == {"deleted_user_id": user}
    assert all(event.user_id != user for event in events)


async def test_public_roadmaps_stay_and_private_ones_go(ada: Browser, people: People) -> None:
    await fill_every_table(ada)  # imports the private roadmap "web-diary"
    grace = await people("Grace")

    assert (await delete_me(ada)).status_code == 204

    assert (await grace.client.get("/v1/roadmaps/web")).status_code == 200
    assert (await grace.client.get("/v1/roadmaps/web-diary")).status_code == 404


async def test_the_last_administrator_is_refused(ada: Browser, database: Database) -> None:
    async with database.sessionmaker() as session:
        await session.execute(
            update(User).where(User.id == await user_id(ada)).values(is_admin=True)
        )
        await session.commit()

    refused = await delete_me(ada)

    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/last-administrator")
    assert (await ada.client.get("/v1/me")).status_code == 200
