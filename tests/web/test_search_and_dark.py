"""The search box and its results, reached with the keyboard; and every page in dark mode
passes axe-core too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.web import LiveServer, screenshots, serious_violations
from tests.web.test_pages import TOPIC, signed_in


async def test_a_visitor_searches_from_the_header_with_the_keyboard_and_opens_a_result(
    page: Any, server: LiveServer, shots: Path
) -> None:
    await page.goto("/")
    await page.keyboard.press("Tab")  # the skip link
    await page.keyboard.press("Tab")  # the brand
    await page.keyboard.press("Tab")  # the search box
    assert await page.evaluate("document.activeElement.name") == "q"
    await page.keyboard.type("idempotency")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/search?q=idempotency")
    first = page.locator("ol.hits > li").first
    assert "idempotency" in (await first.locator("mark").first.inner_text()).lower()
    assert "result" in await page.get_by_role("status").first.inner_text()
    await screenshots(page, "search", shots)
    assert await serious_violations(page) == []
    await first.get_by_role("link").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/roadmaps/backend/topics/**")


PUBLIC = [
    "/",
    "/roadmaps/backend",
    TOPIC,
    "/sign-in",
    "/sign-up",
    "/reset-password",
    "/search?q=http",
]
LEARNER = [
    "/",
    "/roadmaps/backend",
    TOPIC,
    "/reviews",
    "/account",
    "/orgs",
    "/import",
    "/search?q=dns",
]


@pytest.mark.parametrize("who", ["visitor", "learner"])
async def test_every_page_in_dark_mode_has_no_serious_accessibility_violation(
    page: Any, server: LiveServer, who: str
) -> None:
    await page.emulate_media(color_scheme="dark")
    if who == "learner":
        await signed_in(page, server, "Dara")
    found = {}
    for path in PUBLIC if who == "visitor" else LEARNER:
        response = await page.goto(path)
        assert response.status == 200, path
        found[path] = await serious_violations(page)
    assert found == {path: [] for path in found}
