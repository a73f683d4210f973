"""TOTP two-factor authentication: enrolment, two-step sign-in, recovery codes, replay."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import select

from skilltree.accounts.models import User
from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from tests.support.accounts import PASSWORD, Browser, register_and_verify, sign_in

CREDENTIALS = {"email": "ada@example.org", "password": PASSWORD}


@pytest.fixture
async def browser(client: httpx.AsyncClient, outbox: Path) -> Browser:
    await register_and_verify(client, outbox)
    return await sign_in(client)


async def enrol(browser: Browser, clock: FrozenClock) -> tuple[pyotp.TOTP, list[str]]:
    started = await browser.client.post("/v1/me/mfa/totp", headers=browser.write_headers)
    assert started.status_code == 200, started.text
    totp = pyotp.TOTP(started.json()["secret"])
    confirmed = await browser.client.post(
        "/v1/me/mfa/totp/confirm",
        json={"code": totp.at(clock.now())},
        headers=browser.write_headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    browser.csrf_token = confirmed.json()["csrf_token"]  # the session was replaced
    clock.advance(seconds=30)  # the confirming code's time step is now spent
    return totp, confirmed.json()["recovery_codes"]


async def test_enrolment_gives_an_otpauth_uri_and_ten_recovery_codes(
    browser: Browser, clock: FrozenClock
) -> None:
    started = await browser.client.post("/v1/me/mfa/totp", headers=browser.write_headers)
    uri = started.json()["otpauth_uri"]
    totp = pyotp.TOTP(started.json()["secret"])
    confirmed = await browser.client.post(
        "/v1/me/mfa/totp/confirm",
        json={"code": totp.at(clock.now())},
        headers=browser.write_headers,
    )

    assert uri.startswith("otpauth://totp/skilltree:ada%40example.org?secret=")
    assert len(set(confirmed.json()["recovery_codes"])) == 10


async def test_a_wrong_first_code_does_not_turn_mfa_on(browser: Browser) -> None:
    await browser.client.post("/v1/me/mfa/totp", headers=browser.write_headers)

    response = await browser.client.post(
        "/v1/me/mfa/totp/confirm", json={"code": "000000"}, headers=browser.write_headers
    )

    assert response.status_code == 401
    second = await browser.client.post("/v1/auth/login", json=CREDENTIALS)
    assert "csrf_token" in second.json()  # still a one-step sign-in


async def test_the_totp_secret_is_encrypted_at_rest(
    browser: Browser, clock: FrozenClock, database: Database
) -> None:
    started = await browser.client.post("/v1/me/mfa/totp", headers=browser.write_headers)

    async with database.sessionmaker() as session:
        stored = (await session.execute(select(User.totp_secret))).scalar_one()

    assert stored is not None
    assert started.json()["secret"] not in stored


async def test_sign_in_then_needs_the_code(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    totp, _ = await enrol(browser, clock)

    first = await second_client.post("/v1/auth/login", json=CREDENTIALS)
    assert first.json()["mfa_required"] is True
    assert "set-cookie" not in first.headers
    second = await second_client.post(
        "/v1/auth/login/mfa",
        json={"mfa_token": first.json()["mfa_token"], "code": totp.at(clock.now())},
    )

    assert second.status_code == 200
    assert (await second_client.get("/v1/me")).status_code == 200


async def test_a_wrong_code_spends_the_challenge(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    totp, _ = await enrol(browser, clock)
    challenge = (await second_client.post("/v1/auth/login", json=CREDENTIALS)).json()["mfa_token"]

    wrong = await second_client.post(
        "/v1/auth/login/mfa", json={"mfa_token": challenge, "code": "123456"}
    )
    right = await second_client.post(
        "/v1/auth/login/mfa", json={"mfa_token": challenge, "code": totp.at(clock.now())}
    )

    assert wrong.status_code == 401
    assert wrong.json()["type"] == "/problems/invalid-mfa-code"
    assert right.status_code == 401


async def test_a_code_cannot_be_used_twice(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    totp, _ = await enrol(browser, clock)
    code = totp.at(clock.now())
    first = (await second_client.post("/v1/auth/login", json=CREDENTIALS)).json()["mfa_token"]
    await second_client.post("/v1/auth/login/mfa", json={"mfa_token": first, "code": code})

    again = (await second_client.post("/v1/auth/login", json=CREDENTIALS)).json()["mfa_token"]
    replay = await second_client.post("/v1/auth/login/mfa", json={"mfa_token": again, "code": code})

    assert replay.status_code == 401


async def test_a_challenge_expires_after_five_minutes(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    totp, _ = await enrol(browser, clock)
    challenge = (await second_client.post("/v1/auth/login", json=CREDENTIALS)).json()["mfa_token"]
    clock.advance(minutes=5)

    response = await second_client.post(
        "/v1/auth/login/mfa", json={"mfa_token": challenge, "code": totp.at(clock.now())}
    )

    assert response.status_code == 401


async def test_a_recovery_code_works_once(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    _, recovery_codes = await enrol(browser, clock)

    async def answer_with(code: str) -> int:
        challenge = (await second_client.post("/v1/auth/login", json=CREDENTIALS)).json()[
            "mfa_token"
        ]
        response = await second_client.post(
            "/v1/auth/login/mfa", json={"mfa_token": challenge, "recovery_code": code}
        )
        return response.status_code

    assert await answer_with(recovery_codes[0]) == 200
    assert await answer_with(recovery_codes[0]) == 401
    assert await answer_with(recovery_codes[1].upper()) == 200


async def test_api_clients_answer_the_challenge_for_tokens(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    totp, _ = await enrol(browser, clock)

    first = await second_client.post("/v1/auth/token", json=CREDENTIALS)
    login_side = await second_client.post(
        "/v1/auth/login/mfa",
        json={"mfa_token": first.json()["mfa_token"], "code": totp.at(clock.now())},
    )
    clock.advance(seconds=30)
    retry = await second_client.post("/v1/auth/token", json=CREDENTIALS)
    tokens = await second_client.post(
        "/v1/auth/token/mfa",
        json={"mfa_token": retry.json()["mfa_token"], "code": totp.at(clock.now())},
    )

    assert login_side.status_code == 400  # a tokens challenge is not answered at /login/mfa
    assert tokens.status_code == 200
    assert "access_token" in tokens.json()


async def test_disabling_needs_the_password(browser: Browser, clock: FrozenClock) -> None:
    await enrol(browser, clock)

    refused = await browser.client.post(
        "/v1/me/mfa/totp/disable",
        json={"password": "not my password"},
        headers=browser.write_headers,
    )
    disabled = await browser.client.post(
        "/v1/me/mfa/totp/disable", json={"password": PASSWORD}, headers=browser.write_headers
    )

    assert refused.status_code == 401
    assert disabled.status_code == 204
    assert "csrf_token" in (await browser.client.post("/v1/auth/login", json=CREDENTIALS)).json()


async def test_enrolling_twice_is_a_conflict(browser: Browser, clock: FrozenClock) -> None:
    await enrol(browser, clock)

    response = await browser.client.post("/v1/me/mfa/totp", headers=browser.write_headers)

    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"code": "123456", "recovery_code": "abcd-ef01"}, {}, {"code": "12345x"}],
    ids=["both", "neither", "not-six-digits"],
)
async def test_an_answer_must_be_exactly_one_well_formed_code(
    second_client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await second_client.post("/v1/auth/login/mfa", json={"mfa_token": "x" * 43} | body)

    assert response.status_code == 422


async def test_turning_mfa_on_replaces_this_session_and_ends_the_others(
    browser: Browser, second_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await sign_in(second_client)  # another device, signed in with the password alone
    old_cookie = browser.client.cookies.get("skilltree_session")
    old_csrf = browser.csrf_token

    await enrol(browser, clock)

    assert browser.client.cookies.get("skilltree_session") != old_cookie
    assert browser.csrf_token != old_csrf
    assert (await browser.client.get("/v1/me")).status_code == 200
    assert (await second_client.get("/v1/me")).status_code == 401
