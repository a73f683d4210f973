"""The account page in the browser: profile, sessions, API keys (the secret shown once)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.accounts import PASSWORD
from tests.support.web import LiveServer, screenshots, serious_violations
from tests.web.test_authoring import browser_reported
from tests.web.test_pages import signed_in


async def test_a_learner_makes_their_profile_public_and_gets_the_badge_snippet(
    page: Any, server: LiveServer, console_errors: list[str]
) -> None:
    await signed_in(page, server, "Pia")
    await page.goto("/account")
    await page.get_by_label("Time zone").fill("Mars/Olympus")
    await page.get_by_role("button", name="Save profile").click()
    assert "IANA time zone" in await page.locator("[role=alert]").inner_text()
    await browser_reported(page, console_errors, 422)

    handle = f"pia-{uuid.uuid4().hex[:8]}"
    await page.get_by_label("Public name").fill(handle)
    await page.get_by_label("Time zone").fill("Europe/Berlin")
    await page.get_by_label("Public profile").check()
    await page.get_by_role("button", name="Save profile").click()
    await page.wait_for_url("**/account?profile=1#profile-h")
    assert await page.get_by_label("Time zone").input_value() == "Europe/Berlin"
    snippet = await page.get_by_label("Embed it (markdown)").input_value()
    assert snippet == f"![skilltree]({server.url}/v1/users/{handle}/badges/backend.svg)"
    async with httpx.AsyncClient() as client:
        badge = await client.get(snippet[len("![skilltree](") : -1])
    assert badge.status_code == 200
    assert badge.headers["content-type"].startswith("image/svg+xml")


async def test_an_api_key_is_shown_once_works_and_stops_working_when_revoked(
    page: Any, server: LiveServer, shots: Path
) -> None:
    await signed_in(page, server, "Kai")
    await page.goto("/account")
    await page.get_by_label("Name (what it is for)").fill("laptop script")
    await page.get_by_label("read my progress").check()
    await page.get_by_role("button", name="Create key").click()
    assert "shown only this once" in await page.locator("main").inner_text()
    secret = await page.get_by_label("Key", exact=True).input_value()
    await page.locator("#keys-h").scroll_into_view_if_needed()
    await screenshots(page, "account", shots)
    assert await serious_violations(page) == []

    async with httpx.AsyncClient(base_url=server.url) as client:
        bearer = {"authorization": f"Bearer {secret}"}
        assert (await client.get("/v1/me/progress/backend", headers=bearer)).status_code == 200
        await page.goto("/account")
        assert secret not in await page.content()
        row = page.get_by_role("row", name="laptop script")
        assert "progress:read" in await row.inner_text()
        await page.get_by_role("button", name="Revoke laptop script").click()
        await page.wait_for_url("**/account?revoked=1#keys-h")
        assert "revoked" in await page.get_by_role("row", name="laptop script").inner_text()
        assert (await client.get("/v1/me/progress/backend", headers=bearer)).status_code == 401


async def test_a_learner_signs_another_device_out(page: Any, server: LiveServer) -> None:
    email = await signed_in(page, server, "Dev")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"user-agent": "OtherDevice/1.0"}
    ) as other:
        login = await other.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200
        assert (await other.get("/v1/me")).status_code == 200
        await page.goto("/account")
        sessions = page.locator("ul.sessions > li")
        assert await sessions.count() == 2
        assert (
            "this browser"
            in await sessions.nth(0).inner_text() + await sessions.nth(1).inner_text()
        )
        device = sessions.filter(has_text="OtherDevice/1.0")
        await device.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/account?ended=1#sessions-h")
        assert await page.locator("ul.sessions > li").count() == 1
        assert (await other.get("/v1/me")).status_code == 401


async def test_a_learner_deletes_their_account_with_their_password(
    page: Any, server: LiveServer, console_errors: list[str]
) -> None:
    email = await signed_in(page, server, "Del")
    await page.goto("/account")
    await page.get_by_label("Your password").fill("not my password")
    await page.get_by_role("button", name="Delete my account").click()
    assert "password is wrong" in await page.locator("[role=alert]").inner_text()
    await browser_reported(page, console_errors, 422)

    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Delete my account").click()
    await page.wait_for_url(f"{server.url}/")
    async with httpx.AsyncClient(base_url=server.url) as client:
        login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 401
