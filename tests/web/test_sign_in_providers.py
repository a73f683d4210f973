"""The sign-in page offers a button per configured OpenID Connect provider, and none without."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from skilltree.platform.config import OidcProvider, Settings

HTML = {"accept": "text/html"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    company = OidcProvider(
        name="company",
        issuer="https://id.company.example",
        client_id="skilltree",
        client_secret=SecretStr("not-used-here"),
    )
    auth = settings.auth.model_copy(update={"oidc_providers": [company]})
    return settings.model_copy(update={"auth": auth})


async def test_each_configured_provider_has_a_sign_in_button(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in", headers=HTML)
    assert page.status_code == 200
    assert 'href="/v1/auth/oidc/company/login">Company</a>' in page.text
