"""Registration, sign-in and sessions through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from skilltree.accounts.models import User
from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from skilltree.platform.mail import read_outbox
from skilltree.platform.queue.models import OutboxMessage
from tests.support.accounts import (
    PASSWORD,
    TOKEN,
    last_token,
    register_and_verify,
    sign_in,
    text_of,
)

NEW_PASSWORD = "a much longer new passphrase"


async def test_sign_up_verify_and_sign_in(client: httpx.AsyncClient, outbox: Path) -> None:
    await register_and_verify(client, outbox)

    response = await client.post(
        "/v1/auth/login", json={"email": "Ada@Example.org ", "password": PASSWORD}
    )

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "ada@example.org"
    assert response.json()["user"]["email_verified"] is True
    me = await client.get("/v1/me")
    assert me.json()["display_name"] == "Ada"


async def test_the_session_cookie_is_httponly_lax_and_256_bits(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)

    response = await client.post(
        "/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD}
    )

    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43  # 32 random bytes, base64url


async def test_the_verification_email_is_in_the_outbox(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await client.post(
        "/v1/auth/register",
        json={"email": "ada@example.org", "password": PASSWORD, "display_name": "Ada"},
    )

    (message,) = read_outbox(outbox)
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "Confirm your e-mail address for skilltree"
    assert "verify-email#token=" in text_of(message)


async def test_the_verification_email_is_stored_with_the_account_then_sent(
    client: httpx.AsyncClient, outbox: Path, database: Database
) -> None:
    await client.post(
        "/v1/auth/register",
        json={"email": "ada@example.org", "password": PASSWORD, "display_name": "Ada"},
    )

    async with database.unit_of_work() as session:
        [stored] = (await session.scalars(select(OutboxMessage))).all()
    # An outbox row committed with the account: it cannot be lost between commit and sending.
    assert (stored.task_name, stored.args[0]["to"]) == ("mail.send", "ada@example.org")
    assert stored.published_at is not None
    assert len(read_outbox(outbox)) == 1


async def test_registering_a_taken_address_looks_the_same_and_warns_its_owner(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    body = {"email": "ada@example.org", "password": PASSWORD, "display_name": "Ada"}
    first = await client.post("/v1/auth/register", json=body)
    second = await client.post("/v1/auth/register", json=body | {"display_name": "Mallory"})

    assert (first.status_code, first.json()) == (second.status_code, second.json())
    assert [m["Subject"] for m in read_outbox(outbox)][
        -1
    ] == "Someone tried to sign up with your address"


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "too_short"), ("passwordpassword", "common"), ("ada-lovelace-2026", "context")],
)
async def test_weak_passwords_are_refused_with_the_reason(
    client: httpx.AsyncClient, outbox: Path, password: str, reason: str
) -> None:
    response = await client.post(
        "/v1/auth/register",
        json={"email": "ada@example.org", "password": password, "display_name": "Ada Lovelace"},
    )

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/weak-password"
    assert response.json()["reason"] == reason
    assert read_outbox(outbox) == []


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)

    unknown = await client.post(
        "/v1/auth/login", json={"email": "eve@example.org", "password": PASSWORD}
    )
    wrong = await client.post(
        "/v1/auth/login", json={"email": "ada@example.org", "password": "x" * 20}
    )

    assert unknown.status_code == wrong.status_code == 401
    strip = {"request_id", "instance"}
    assert {k: v for k, v in unknown.json().items() if k not in strip} == {
        k: v for k, v in wrong.json().items() if k not in strip
    }


async def test_an_unverified_account_cannot_sign_in(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/auth/register",
        json={"email": "ada@example.org", "password": PASSWORD, "display_name": "Ada"},
    )

    response = await client.post(
        "/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD}
    )

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/email-not-verified"


async def test_a_verification_token_works_once(client: httpx.AsyncClient, outbox: Path) -> None:
    await register_and_verify(client, outbox)

    again = await client.post("/v1/auth/verify-email", json={"token": last_token(outbox)})

    assert again.status_code == 400
    assert again.json()["type"] == "/problems/invalid-token"


async def test_a_verification_token_expires_after_24_hours(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await client.post(
        "/v1/auth/register",
        json={"email": "ada@example.org", "password": PASSWORD, "display_name": "Ada"},
    )
    clock.advance(hours=24)

    response = await client.post("/v1/auth/verify-email", json={"token": last_token(outbox)})

    assert response.status_code == 400


async def test_a_write_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    await sign_in(client)

    response = await client.post("/v1/auth/logout")

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/csrf-rejected"
    assert (await client.get("/v1/me")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}],
    ids=["foreign-origin", "cross-site-fetch"],
)
async def test_a_cross_site_write_is_refused_even_with_the_token(
    client: httpx.AsyncClient, outbox: Path, headers: dict[str, str]
) -> None:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)

    response = await client.post("/v1/auth/logout", headers=browser.write_headers | headers)

    assert response.status_code == 403


async def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_only_a_notice(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    response = await client.post("/v1/auth/password-reset", json={"email": "nobody@example.org"})

    assert response.status_code == 202
    [notice] = read_outbox(outbox)
    assert notice["To"] == "nobody@example.org"
    assert "no account uses it" in text_of(notice)
    assert not TOKEN.search(text_of(notice))  # nothing that could reset anything


async def test_a_reset_token_expires_after_an_hour(
    client: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    await client.post("/v1/auth/password-reset", json={"email": "ada@example.org"})
    clock.advance(minutes=60)

    response = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": last_token(outbox), "password": NEW_PASSWORD},
    )

    assert response.status_code == 400


async def test_changing_the_password_needs_the_current_one(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)

    response = await client.post(
        "/v1/me/password",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=browser.write_headers,
    )

    assert response.status_code == 401


@pytest.mark.usefixtures("production_hashing")
async def test_a_hash_with_old_parameters_is_upgraded_at_sign_in(
    client: httpx.AsyncClient, outbox: Path, database: Database
) -> None:
    from argon2 import PasswordHasher

    await register_and_verify(client, outbox)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    async with database.unit_of_work() as session:
        user = (await session.execute(select(User))).scalar_one()
        user.password_hash = weak

    await sign_in(client)

    async with database.sessionmaker() as session:
        stored = (await session.execute(select(User.password_hash))).scalar_one()
    assert stored != weak
    assert stored.startswith("$argon2id$")
    assert "m=65536" in stored


async def test_security_events_record_sign_ins_failures_and_password_changes(
    client: httpx.AsyncClient, outbox: Path
) -> None:
    await register_and_verify(client, outbox)
    await client.post(
        "/v1/auth/login",
        json={"email": "ada@example.org", "password": "wrong password here"},
        headers={"user-agent": "pytest-browser/1.0"},
    )
    browser = await sign_in(client)
    await client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=browser.write_headers,
    )

    events = (await client.get("/v1/me/security-events")).json()["items"]

    kinds = [event["kind"] for event in events]
    assert kinds == ["password.changed", "login.succeeded", "login.failed", "email.verified"]
    failed = events[2]
    assert failed["ip"] == "127.0.0.1"
    assert failed["user_agent"] == "pytest-browser/1.0"
    assert failed["details"] == {"email": "ada@example.org"}
