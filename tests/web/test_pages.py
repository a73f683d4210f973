"""Every page, as a visitor and as a learner: it renders, axe-core finds nothing serious, and
errors are pages for browsers but problem+json for API clients."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import PASSWORD, TOKEN
from tests.support.web import LiveServer, screenshots, serious_violations

TOPIC = "/roadmaps/backend/topics/centralized-error-handling"


async def signed_in(page: Any, server: LiveServer, name: str = "Ola") -> str:
    """An account made through the API (quicker than the forms, tested elsewhere)."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.org"
    api = page.context.request
    registered = await api.post(
        "/v1/auth/register", data={"email": email, "password": PASSWORD, "display_name": name}
    )
    assert registered.status == 202
    token = TOKEN.search(server.last_link(email))
    assert token is not None
    assert (await api.post("/v1/auth/verify-email", data={"token": token.group(1)})).status == 204
    assert (await api.post("/v1/auth/login", data={"email": email, "password": PASSWORD})).ok
    return email


@pytest.mark.parametrize(
    "path",
    ["/", "/roadmaps/backend", TOPIC, "/sign-in", "/sign-up", "/verify-email", "/reset-password"],
)
async def test_every_public_page_has_no_serious_accessibility_violation(
    page: Any, path: str
) -> None:
    response = await page.goto(path)
    assert response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert await serious_violations(page) == []


@pytest.mark.parametrize("path", ["/", "/roadmaps/backend", TOPIC, "/reviews", "/account"])
async def test_every_learner_page_has_no_serious_accessibility_violation(
    page: Any, server: LiveServer, path: str
) -> None:
    await signed_in(page, server)
    response = await page.goto(path)
    assert response.status == 200
    assert await serious_violations(page) == []


async def test_topic_page_shows_the_source_that_implements_it_with_its_test_and_command(
    page: Any, server: LiveServer, shots: Path
) -> None:
    await page.goto(TOPIC)
    section = page.locator("section.implemented")
    source = section.locator(".source").first
    assert "def install_problem_handlers" in await source.inner_text()
    path = await section.locator(".path").first.inner_text()
    assert path.startswith("src/skilltree/platform/http/problems.py, lines ")
    docs = section.get_by_role("link", name="try it in the API docs").first
    assert (await docs.get_attribute("href")).startswith("/docs#/roadmaps/")
    await section.get_by_text(
        "test_unhandled_error_is_a_500_problem_without_internals", exact=True
    ).first.click()
    assert ".venv/bin/pytest 'tests/platform/test_problems.py::" in await section.inner_text()
    await screenshots(page, "topic", shots)


async def test_a_missing_page_is_html_for_a_browser_and_problem_json_for_an_api_client(
    page: Any, server: LiveServer, console_errors: list[str]
) -> None:
    response = await page.goto("/roadmaps/no-such-roadmap")
    assert response.status == 404
    assert len(console_errors) == 1  # the browser reports the 404 itself
    console_errors.clear()
    assert "There is no roadmap 'no-such-roadmap'." in await page.inner_text("main")
    assert await serious_violations(page) == []
    async with httpx.AsyncClient(base_url=server.url) as client:
        api = await client.get("/roadmaps/no-such-roadmap", headers={"accept": "*/*"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_signing_in_from_a_link_returns_to_the_page_it_came_from(
    page: Any, server: LiveServer
) -> None:
    await page.goto(TOPIC)
    await page.locator("p.notice").get_by_role("link", name="Sign in").click()
    assert "next=" in page.url
    await signed_in(page, server, "Back")
    await page.reload()
    assert page.url.endswith(TOPIC)
    assert await page.get_by_role("heading", name="My note").is_visible()


async def test_a_status_change_works_as_a_plain_form_post_without_javascript(
    chromium: Any, server: LiveServer
) -> None:
    context = await chromium.new_context(base_url=server.url, java_script_enabled=False)
    page = await context.new_page()
    try:
        await signed_in(page, server, "Nojs")
        await page.goto("/roadmaps/backend")
        row = page.locator("li#t-dns")
        await row.get_by_role("button", name="In progress").click()
        await page.wait_for_load_state()
        assert await row.get_attribute("data-status") == "in_progress"
        await page.get_by_role("button", name="Undo last change").click()
        await page.wait_for_load_state()
        assert await page.locator("li#t-dns").get_attribute("data-status") == "todo"
    finally:
        await context.close()


async def test_a_form_posted_from_another_site_is_refused(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            "/sign-in",
            data={"email": "a@example.org", "password": PASSWORD},
            headers={"origin": "https://evil.example", "accept": "text/html"},
        )
    assert response.status_code == 403
    assert "not allowed" in response.text
