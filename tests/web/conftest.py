"""Browser tests share one live server and one Chromium per test worker; each test gets a
fresh browser context (its own cookies), so tests never see each other's sign-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.web import LiveServer, live_server, require_chromium


@pytest.fixture(scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    require_chromium()
    async with live_server(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    executable = require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        yield browser
        await browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """What the page logged as errors; a test expecting one (a 404 page) clears it."""
    return []


@pytest.fixture
async def page(chromium: Any, server: LiveServer, console_errors: list[str]) -> AsyncIterator[Any]:
    context = await chromium.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    errors = console_errors
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    yield tab
    await context.close()
    # A CSP refusal or a script error shows in the console: no page may have any.
    assert errors == [], errors


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")
