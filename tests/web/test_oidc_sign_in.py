"""Signing in with a provider from the web ends on a page: the callback redirects a browser to
the dashboard (signed in) or to the two-factor code page, and shows a failure as a page; API
clients keep the JSON. Against the loopback provider the accounts tests use."""

from __future__ import annotations

from pathlib import Path

import httpx

from skilltree.platform.clock import FrozenClock
from tests.accounts import test_oidc as oidc
from tests.accounts.test_mfa import enrol
from tests.support.accounts import register_and_verify, sign_in

# The loopback provider and the settings naming it, as the accounts tests set them up.
provider_server = oidc.provider_server
provider = oidc.provider
settings = oidc.settings
at_provider = oidc.at_provider
start, visit_provider = oidc.start, oidc.visit_provider

# What Chromium sends on a top-level navigation.
NAVIGATION = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def provider_callback(client: httpx.AsyncClient, at_provider: httpx.AsyncClient) -> str:
    return await visit_provider(at_provider, await start(client))


async def test_a_browser_lands_on_the_dashboard_signed_in(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    callback = await provider_callback(client, at_provider)

    response = await client.get(callback, headers=NAVIGATION)

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    assert "skilltree_oidc" not in client.cookies  # the flow's cookie is spent
    dashboard = await client.get("/", headers=NAVIGATION)
    assert "Welcome back, Ada Lovelace" in dashboard.text


async def test_an_api_client_still_gets_the_json(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    response = await client.get(await provider_callback(client, at_provider))

    assert response.status_code == 200
    assert response.json()["csrf_token"]


async def test_with_two_factor_the_browser_is_sent_to_the_code_page(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)
    totp, _ = await enrol(browser, clock)
    await client.post("/v1/auth/logout", headers=browser.write_headers)

    response = await client.get(await provider_callback(client, at_provider), headers=NAVIGATION)

    assert response.status_code == 303
    path, _, fragment = response.headers["location"].partition("#challenge=")
    assert path == "/sign-in/code"
    assert (await client.get("/v1/me")).status_code == 401
    page = await client.get(path, headers=NAVIGATION)
    assert "Enter your code" in page.text
    signed_in = await client.post(
        "/sign-in/code",
        data={"challenge": fragment, "code": totp.at(clock.now()), "next": "/"},
        headers=NAVIGATION,
    )
    assert signed_in.status_code == 303
    assert (await client.get("/v1/me")).status_code == 200


async def test_a_refused_sign_in_is_shown_to_a_browser_as_a_page(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    await start(client)

    response = await client.get(
        "/v1/auth/oidc/loopback/callback?error=access_denied&state=x", headers=NAVIGATION
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "The provider did not sign you in (access_denied)." in response.text
    assert (await client.get("/v1/me")).status_code == 401
