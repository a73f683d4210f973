"""A signed-in learner and a small nested roadmap with estimates and concepts.

The `ada` fixture is made available to tests/progress and tests/reviews by their conftest.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]

WEB: dict[str, Any] = {
    "slug": "web",
    "title": "Web",
    "topics": [
        {
            "slug": "http",
            "title": "HTTP",
            "children": [
                {"slug": "status-codes", "title": "Status codes", "estimate_hours": 2},
                {
                    "slug": "caching",
                    "title": "Caching",
                    "children": [
                        {
                            "slug": "etags",
                            "title": "ETags",
                            "concept": "etags",
                            "estimate_hours": 1,
                        },
                        {"slug": "cache-control", "title": "Cache-Control", "estimate_hours": 1},
                    ],
                },
            ],
        },
        {
            "slug": "databases",
            "title": "Databases",
            "children": [{"slug": "indexes", "title": "Indexes", "estimate_hours": 3}],
        },
    ],
}

API: dict[str, Any] = {
    "slug": "api",
    "title": "API design",
    "topics": [
        {
            "slug": "conditional-requests",
            "title": "Conditional requests",
            "children": [{"slug": "entity-tags", "title": "Entity tags", "concept": "etags"}],
        }
    ],
}


async def import_roadmap(
    learner: Browser, document: dict[str, Any], visibility: str = "private"
) -> None:
    response = await learner.client.post(
        "/v1/roadmaps/import",
        json=document,
        params={"visibility": visibility},
        headers=learner.write_headers,
    )
    assert response.status_code in (200, 201), response.text


async def mark(
    learner: Browser, topic: str, status: str, roadmap: str = "web", **extra: Any
) -> httpx.Response:
    return await learner.client.put(
        f"/v1/me/progress/{roadmap}/{topic}",
        json={"status": status, **extra},
        headers=learner.write_headers,
    )


def by_slug(topics: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every node of a nested progress tree, by slug."""
    found: dict[str, dict[str, Any]] = {}
    for topic in topics:
        found[topic["slug"]] = topic
        found.update(by_slug(topic["children"]))
    return found


@pytest.fixture
async def ada(people: People) -> Browser:
    learner = await people("Ada")
    await import_roadmap(learner, WEB, visibility="public")
    return learner


async def use_api_key(learner: Browser) -> None:
    """Switch the learner to a non-expiring API key, so tests can move the clock by days
    without their browser session ending."""
    response = await learner.client.post(
        "/v1/me/api-keys",
        json={"name": "tests", "scopes": ["progress:read", "progress:write"]},
        headers=learner.write_headers,
    )
    assert response.status_code == 201, response.text
    learner.client.headers["authorization"] = f"Bearer {response.json()['key']}"
