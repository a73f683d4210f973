"""An account that signs in only through an OpenID provider knows no password: it deletes
itself right after signing in again (decision 0059)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import FilesSettings, Settings
from tests.accounts import test_oidc as oidc

provider_server = oidc.provider_server
provider = oidc.provider
at_provider = oidc.at_provider


@pytest.fixture
def settings(settings: Settings, provider: oidc.LoopbackProvider, tmp_path: Path) -> Settings:
    with_provider = oidc.settings.__wrapped__(settings, provider)  # type: ignore[attr-defined]
    files = FilesSettings(storage_dir=tmp_path / "files")
    return with_provider.model_copy(update={"files": files})


async def provider_sign_in(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> dict[str, str]:
    """Sign in through the provider; the headers an unsafe request of that session needs."""
    signed_in = await oidc.oidc_sign_in(client, at_provider)
    assert signed_in.status_code == 200, signed_in.text
    return {"x-csrf-token": signed_in.json()["csrf_token"]}


async def delete_without_password(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> httpx.Response:
    return await client.request("DELETE", "/v1/me", json={}, headers=headers)


async def test_right_after_a_provider_sign_in_the_account_deletes_itself(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    headers = await provider_sign_in(client, at_provider)

    deleted = await delete_without_password(client, headers)

    assert deleted.status_code == 204, deleted.text
    assert (await client.get("/v1/me")).status_code == 401


async def test_an_empty_body_is_enough_right_after_signing_in(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient
) -> None:
    headers = await provider_sign_in(client, at_provider)

    deleted = await client.request("DELETE", "/v1/me", headers=headers)

    assert deleted.status_code == 204, deleted.text


async def test_a_session_left_open_must_sign_in_again_first(
    client: httpx.AsyncClient, at_provider: httpx.AsyncClient, clock: FrozenClock
) -> None:
    headers = await provider_sign_in(client, at_provider)
    clock.advance(minutes=6)
    assert (await client.get("/v1/me")).status_code == 200  # still signed in, used all along

    refused = await delete_without_password(client, headers)

    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/recent-sign-in-required")
    assert (await client.get("/v1/me")).status_code == 200
    again = await provider_sign_in(client, at_provider)
    assert (await delete_without_password(client, again)).status_code == 204
