"""The interactive API documentation works offline: every script, style sheet and image the
/docs and /redoc pages load comes from the installation itself."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_the_server(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text
    assets = ASSET.findall(html)

    assert assets, "the page loads its scripts"
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset


async def test_the_swagger_ui_page_reads_this_servers_api_description(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/docs")).text

    assert "'/openapi.json'" in html or '"/openapi.json"' in html
