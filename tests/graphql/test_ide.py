"""The GraphiQL IDE at GET /graphql: served from the package with hashed names, a strict
policy, off in production unless enabled — and, in a real browser, loading nothing from
elsewhere and running a query."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from skilltree.app import create_app
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import AppSettings, GraphQLSettings, Settings
from skilltree.platform.db import Database
from tests.support.accounts import Browser
from tests.support.web import LiveServer, live_server, require_chromium

HTML = {"accept": "text/html"}


def asset_links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/graphql/ide/[^"]+)"', page)


async def test_the_page_links_hashed_assets_under_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=HTML)

    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in page.text  # every script is a file
    links = asset_links(page.text)
    assert len(links) == 6
    assert all(re.search(r"\.[0-9a-f]{12}\.(js|css)$", link) for link in links)


async def test_the_document_says_a_get_answers_the_page_or_a_result(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=HTML)
    result = await client.get("/graphql", params={"query": "{ __typename }"})
    document = (await client.get("/openapi.json")).json()

    answered = document["paths"]["/graphql"]["get"]["responses"]["200"]["content"]
    assert page.headers["content-type"].split(";")[0] in answered
    assert result.headers["content-type"].split(";")[0] in answered


async def test_the_document_describes_what_a_query_sends_and_such_a_query_is_answered(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    get = document["paths"]["/graphql"]["get"]
    post = document["paths"]["/graphql"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    parameters = {parameter["name"] for parameter in get["parameters"]}

    sent_in_the_url = await client.get(
        "/graphql", params={"query": "query Q { __typename }", "operationName": "Q"}
    )
    sent_as_json = await client.post(
        "/graphql",
        json={
            "query": "query Q($s: Boolean!) { __typename @skip(if: $s) }",
            "variables": {"s": False},
        },
    )

    assert {"query", "variables", "operationName", "extensions"} <= parameters & set(body)
    assert post["requestBody"]["required"] is True
    assert sent_in_the_url.json() == sent_as_json.json() == {"data": {"__typename": "Query"}}


async def test_assets_are_kept_for_a_year_and_unknown_names_are_not_found(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=HTML)
    script = next(
        link for link in asset_links(page.text) if link.endswith(".js") and "graphiql" in link
    )

    found = await client.get(script)
    missing = await client.get("/graphql/ide/graphiql.min.000000000000.js")

    assert found.status_code == 200
    assert found.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert found.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404


async def test_a_signed_in_browser_gets_its_csrf_token_on_the_page(ada: Browser) -> None:
    page = await ada.client.get("/graphql", headers=HTML)

    assert f'<meta name="csrf-token" content="{ada.csrf_token}">' in page.text


async def ide_page(settings: Settings, database: Database, clock: FrozenClock) -> httpx.Response:
    application = create_app(settings, database=database, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/graphql", headers=HTML)


async def test_the_ide_is_off_in_production_unless_enabled(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    production = settings.model_copy(
        update={"app": AppSettings(env="production", secret_key="a-real-secret-" * 4)}
    )
    enabled = production.model_copy(update={"graphql": GraphQLSettings(ide=True)})

    refused = await ide_page(production, database, clock)
    served = await ide_page(enabled, database, clock)

    assert refused.status_code == 404
    assert "graphiql" not in refused.text.lower()
    assert served.status_code == 200


# --- In a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    require_chromium()
    async with live_server(tmp_path_factory.mktemp("ide"), SKILLTREE_GRAPHQL_IDE="true") as live:
        yield live


async def test_the_ide_loads_nothing_from_elsewhere_and_runs_a_query(
    server: LiveServer, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    requested: list[str] = []
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=require_chromium())
        page: Any = await browser.new_page()
        page.set_default_timeout(20_000)
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        await page.goto(f"{server.url}/graphql", wait_until="networkidle")
        await page.locator(".graphiql-execute-button").click()
        response = page.locator(".graphiql-response")
        await response.get_by_text('"total"').wait_for()
        text = await response.inner_text()
        await page.screenshot(path=str(tmp_path / "ide.png"))
        await browser.close()

    assert '"slug": "backend"' in text  # the built-in roadmap, answered by this server
    assert [url for url in requested if not url.startswith(server.url)] == []
    assert problems == []  # a CSP refusal or a script error would show here
