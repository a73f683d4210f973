"""Sign-in with OpenID Connect, end to end against a real provider on loopback: discovery,
JWKS, the authorization and token endpoints over HTTP; PKCE, state and nonce; linking by
verified e-mail only; and every way a bad response must be refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from skilltree.accounts.oidc import FLOW_SECONDS
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import OidcProvider, Settings
from tests.accounts.test_mfa import enrol
from tests.support.accounts import PASSWORD, register_and_verify, sign_in
from tests.support.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    LoopbackProvider,
    _new_key,
    running_provider,
)

CALLBACK = "http://127.0.0.1:8000/v1/auth/oidc/loopback/callback"


@pytest.fixture(scope="module")
def provider_server() -> Iterator[LoopbackProvider]:
    clock = FrozenClock()
    with running_provider(clock, CALLBACK) as provider:
        yield provider


@pytest.fixture
def provider(provider_server: LoopbackProvider, clock: FrozenClock) -> LoopbackProvider:
    """The running provider, reset for this test and on this test's clock."""
    provider_server.clock = clock
    provider_server.id_token_claims = {}
    provider_server.foreign_key = None
    provider_server.person = type(provider_server.person)()
    provider_server.token_requests.clear()
    return provider_server


@pytest.fixture
def settings(settings: Settings, provider: LoopbackProvider) -> Settings:
    loopback = OidcProvider(
        name="loopback",
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
    )
    auth = settings.auth.model_copy(update={"oidc_providers": [loopback]})
    return settings.model_copy(update={"auth": auth})


@pytest.fixture
async def at_provider() -> AsyncIterator[httpx.AsyncClient]:
    """The browser's visit to the provider: real HTTP to loopback, redirects not followed."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def start(client: httpx.AsyncClient) -> str:
    """Begin signing in; return the provider's authorization URL."""
    response = await client.get("/v1/auth/oidc/loopback/login")
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def visit_provider(at_provider: httpx.AsyncClient, authorization_url: str) -> str:
    """The provider signs its person in and redirects back; return the callback path."""
    response = await at_provider.get(authorization_url)
    assert response.status_code == 302, response.text
    callback = urlsplit(response.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == CALLBACK
    return f"{callback.path}?{callback.query}"


async def oidc_sign_in(client: httpx.AsyncClient, at_provider: httpx.AsyncClient) -> httpx.Response:
    return await client.get(await visit_provider(at_provider, await start(client)))


async def test_the_configured_providers_are_listed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/oidc/providers")

    assert response.json() == {
        "items": [{"name": "loopback", "login_url": "/v1/auth/oidc/loopback/login"}]
    }


async def test_the_authorization_request_carries_pkce_state_and_nonce(
    client: httpx.AsyncClient, provider: LoopbackProvider
) -> None:
    url = urlsplit(await start(client))
    query = {key: values[0] for key, values in parse_qs(url.query).items()}

    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.issuer}/authorize"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256 digest
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"].split() == ["openid", "email", "profile"]
    flow_cookie = client.cookies.get("skilltree_oidc")
    assert flow_cookie
    assert query["state"] not in flow_cookie  # sealed, not readable


async def test_a_new_person_gets_a_verified_account_and_a_session(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, provider: LoopbackProvider
) -> None:
    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 200, response.text
    me = (await client.get("/v1/me")).json()
    assert me["email"] == "ada@example.org"
    assert me["email_verified"] is True
    assert me["display_name"] == "Ada Lovelace"
    assert response.json()["csrf_token"]
    # The code was redeemed with the PKCE verifier, authenticated with the client secret.
    assert provider.token_requests[-1]["code_verifier"]
    kinds = [e["kind"] for e in (await client.get("/v1/me/security-events")).json()["items"]]
    assert {"oidc.linked", "login.succeeded"} <= set(kinds)


async def test_a_verified_email_links_the_existing_account(
    client: httpx.AsyncClient,
    second_client: httpx.AsyncClient,
    at_provider: httpx.AsyncClient,
    outbox: Path,
) -> None:
    await register_and_verify(second_client, outbox)
    await sign_in(second_client)
    existing = (await second_client.get("/v1/me")).json()["id"]

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == existing


async def test_later_sign_ins_match_the_subject_not_the_email(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, provider: LoopbackProvider
) -> None:
    first = (await oidc_sign_in(client, at_provider)).json()["user"]["id"]
    provider.person.email = "ada.lovelace@example.org"  # changed at the provider

    again = await oidc_sign_in(client, at_provider)

    assert again.json()["user"]["id"] == first
    assert again.json()["user"]["email"] == "ada@example.org"


async def test_an_unverified_email_is_never_linked(
    client: httpx.AsyncClient,
    second_client: httpx.AsyncClient,
    at_provider: httpx.AsyncClient,
    provider: LoopbackProvider,
    outbox: Path,
) -> None:
    await register_and_verify(second_client, outbox)
    provider.person.email_verified = False

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/oidc-email-not-verified"
    assert (await client.get("/v1/me")).status_code == 401


async def test_linking_takes_an_unproven_account_away_from_whoever_registered_it(
    client: httpx.AsyncClient,
    second_client: httpx.AsyncClient,
    at_provider: httpx.AsyncClient,
) -> None:
    # Someone registers the address without owning the mailbox, and never verifies it.
    registered = await second_client.post(
        "/v1/auth/register",
        json={"email": "ada@example.org", "password": PASSWORD, "display_name": "Mallory"},
    )
    assert registered.status_code == 202

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 200
    # The squatter's password no longer opens the now-verified account.
    squatter = await second_client.post(
        "/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert squatter.status_code == 401


async def test_a_second_factor_is_still_required(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, outbox: Path, clock: FrozenClock
) -> None:
    await register_and_verify(client, outbox)
    browser = await sign_in(client)
    await enrol(browser, clock)
    await client.post("/v1/auth/logout", headers=browser.write_headers)

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 200
    assert response.json()["mfa_required"] is True
    assert (await client.get("/v1/me")).status_code == 401


async def test_a_callback_with_another_state_is_refused(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    callback = await visit_provider(at_provider, await start(client))

    for forged in (
        callback.replace("state=", "state=x"),
        callback.replace("state=", "state=%C3%A9"),
    ):
        response = await client.get(forged)

        assert response.status_code == 400
        assert response.json()["type"] == "/problems/oidc-login-failed"
    assert (await client.get("/v1/me")).status_code == 401


async def test_a_callback_in_another_browser_is_refused(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    # Login CSRF: an attacker sends the victim a callback link for the attacker's account.
    callback = await visit_provider(at_provider, await start(client))

    response = await second_client.get(callback)

    assert response.status_code == 400
    assert (await second_client.get("/v1/me")).status_code == 401


async def test_a_flow_older_than_ten_minutes_is_refused(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, clock: FrozenClock
) -> None:
    callback = await visit_provider(at_provider, await start(client))
    clock.advance(seconds=FLOW_SECONDS)

    response = await client.get(callback)

    assert response.status_code == 400


async def test_a_provider_error_is_a_clear_problem(client: httpx.AsyncClient) -> None:
    await start(client)

    response = await client.get("/v1/auth/oidc/loopback/callback?error=access_denied&state=x")

    assert response.status_code == 400
    assert "access_denied" in response.json()["detail"]


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"nonce": "replayed"}, "nonce from another attempt"),
        ({"aud": "another-client"}, "token for another client"),
        ({"iss": "http://127.0.0.1:1"}, "token from another issuer"),
        ({"exp": 1_000_000_000}, "expired"),
    ],
    ids=["nonce", "audience", "issuer", "expired"],
)
async def test_an_id_token_with_wrong_claims_is_refused(
    client: httpx.AsyncClient,
    at_provider: httpx.AsyncClient,
    provider: LoopbackProvider,
    claims: dict[str, object],
    why: str,
) -> None:
    provider.id_token_claims = claims

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 400, why
    assert response.json()["type"] == "/problems/oidc-login-failed"
    assert (await client.get("/v1/me")).status_code == 401


async def test_an_id_token_signed_with_an_unpublished_key_is_refused(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, provider: LoopbackProvider
) -> None:
    provider.foreign_key = _new_key(provider.signing_key.kid or "key-1")  # same kid, other key

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 400
    assert "signature" in response.json()["detail"]


async def test_a_rotated_provider_key_is_fetched_again(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, provider: LoopbackProvider
) -> None:
    await start(client)  # discovery and keys are now cached
    provider.rotate_key()

    response = await oidc_sign_in(client, at_provider)

    assert response.status_code == 200, response.text


async def test_an_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/oidc/nowhere/login")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/oidc-provider-not-found"


async def test_an_unreachable_provider_is_a_502(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    down = OidcProvider(
        name="down", issuer="http://127.0.0.1:1", client_id="x", client_secret=SecretStr("y")
    )
    settings.auth.oidc_providers.append(down)

    response = await client.get("/v1/auth/oidc/down/login")

    assert response.status_code == 502
    assert response.json()["type"] == "/problems/oidc-provider-unavailable"


def test_an_insecure_issuer_is_refused_in_settings() -> None:
    with pytest.raises(ValueError, match="https"):
        OidcProvider(
            name="plain", issuer="http://idp.example", client_id="x", client_secret=SecretStr("y")
        )
