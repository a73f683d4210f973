"""The web app over HTTP, without a browser: assets, headers, forms and their CSRF defence."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx

from skilltree.web.assets import manifest
from tests.support.accounts import Browser

HTML = {"accept": "text/html"}


async def test_an_asset_is_served_under_its_content_hash_and_cached_for_a_year(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/sign-in", headers=HTML)
    stylesheet = re.search(r'href="(/assets/app\.[0-9a-f]{12}\.css)"', page.text)
    assert stylesheet is not None
    response = await client.get(stylesheet.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == manifest().by_name["app.css"].body
    stale = await client.get("/assets/app.000000000000.css")
    assert stale.status_code == 404


async def test_a_page_runs_only_this_origins_scripts_and_styles(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers=HTML)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text
    assert " style=" not in response.text


async def test_a_form_post_without_the_sessions_csrf_token_changes_nothing(
    people: Callable[[str], Awaitable[Browser]],
) -> None:
    learner = await people("Ada")
    action = "/roadmaps/backend/undo"
    forged = await learner.client.post(action, data={"csrf_token": "guess"}, headers=HTML)
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    assert forged.headers["content-type"].startswith("text/html")
    api = await learner.client.post(action, data={"csrf_token": "guess"})
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["type"] == "/problems/csrf-rejected"


async def test_the_sign_in_page_has_no_provider_buttons_when_none_is_configured(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/sign-in", headers=HTML)
    assert "/v1/auth/oidc/" not in page.text


async def test_a_page_asked_with_a_dead_session_cookie_clears_it(
    client: httpx.AsyncClient, people: Callable[[str], Awaitable[Browser]]
) -> None:
    """A browser whose session ended (signed out elsewhere, expired, revoked) would send the
    dead cookie with every request for as long as it keeps it; the page it is shown as a
    visitor tells it to drop the cookie. A live session's cookie is left alone, and a visitor
    without one is sent no cookie."""
    learner = await people("Ada")
    dead = {"cookie": "skilltree_session=ended-long-ago", **HTML}

    for path in ("/", "/roadmaps/nowhere", "/sign-in"):
        cleared = await client.get(path, headers=dead)
        assert 'skilltree_session=""' in cleared.headers.get("set-cookie", ""), path
        assert "Max-Age=0" in cleared.headers["set-cookie"], path
        assert "expires=Thu, 01 Jan 1970 00:00:00 GMT" in cleared.headers["set-cookie"], path
    live = await learner.client.get("/", headers=HTML)
    visitor = await client.get("/", headers=HTML)

    assert live.status_code == 200
    assert "set-cookie" not in live.headers
    assert "set-cookie" not in visitor.headers
