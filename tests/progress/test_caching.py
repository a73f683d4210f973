"""A learner's progress, summary and badges come from the cache; every change of theirs (or of
the roadmap, or of their profile) invalidates them, and no one is served another's. Run with the
cache in process memory and in a real Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from skilltree.platform.cache import Cache
from skilltree.platform.config import RedisSettings, Settings
from tests.support.accounts import Browser
from tests.support.progress import API, People, import_roadmap, mark

SUMMARY = "/v1/me/progress/web/summary"
PROGRESS = "/v1/me/progress/web"


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return settings.model_copy(update={"redis": shared_state})


def cache_of(app: FastAPI) -> Cache:
    cache: Cache = app.state.resources.cache
    return cache


async def views(learner: Browser) -> tuple[dict[str, Any], dict[str, Any]]:
    summary, progress = await learner.client.get(SUMMARY), await learner.client.get(PROGRESS)
    assert summary.status_code == progress.status_code == 200, summary.text
    return summary.json()["summary"], progress.json()["summary"]


async def test_a_summary_is_computed_once_then_served_from_the_cache(
    ada: Browser, app: FastAPI
) -> None:
    before = cache_of(app).stats.recomputes
    first = await ada.client.get(SUMMARY)
    second = await ada.client.get(SUMMARY)

    assert second.content == first.content
    assert second.headers["cache-control"] == "private, no-store"
    assert cache_of(app).stats.recomputes == before + 1


# Each write first caches the views it is about to change (`views`), then makes its change.


async def set_status(ada: Browser) -> None:
    await views(ada)
    await mark(ada, "indexes", "in_progress")


async def undo(ada: Browser) -> None:
    await mark(ada, "indexes", "in_progress")
    await views(ada)
    await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)


async def import_file(ada: Browser) -> None:
    await views(ada)
    body = {"format": "skilltree-progress/1", "topics": [{"slug": "indexes", "status": "done"}]}
    await ada.client.post("/v1/me/progress/web/import", json=body, headers=ada.write_headers)


async def mark_a_shared_concept_elsewhere(ada: Browser) -> None:
    # "entity-tags" on the API roadmap teaches the same concept as "etags" on this one.
    await import_roadmap(ada, API)
    await views(ada)
    await mark(ada, "entity-tags", "done", roadmap="api")


async def stop_sharing_by_concept(ada: Browser) -> None:
    await import_roadmap(ada, API)
    await mark(ada, "entity-tags", "done", roadmap="api")
    await views(ada)
    await ada.client.patch(
        "/v1/me/profile", json={"share_progress_by_concept": False}, headers=ada.write_headers
    )


async def add_a_topic_to_the_roadmap(ada: Browser) -> None:
    await views(ada)
    await ada.client.post(
        "/v1/roadmaps/web/topics", json={"title": "Replication"}, headers=ada.write_headers
    )


# Each write, and what the summary says after it (4 topics, all to do, before the test).
WRITES: dict[str, tuple[Callable[[Browser], Awaitable[None]], dict[str, int]]] = {
    "set a status": (set_status, {"in_progress": 1}),
    "undo": (undo, {"in_progress": 0, "todo": 4}),
    "import a progress file": (import_file, {"done": 1}),
    "mark a shared concept on another roadmap": (mark_a_shared_concept_elsewhere, {"done": 1}),
    "stop sharing by concept": (stop_sharing_by_concept, {"done": 0, "todo": 4}),
    "add a topic to the roadmap": (add_a_topic_to_the_roadmap, {"todo": 5}),
}


@pytest.mark.parametrize(("write", "expected"), WRITES.values(), ids=WRITES.keys())
async def test_every_change_invalidates_the_cached_summary_and_progress(
    ada: Browser, write: Callable[[Browser], Awaitable[None]], expected: dict[str, int]
) -> None:
    await write(ada)

    summary, progress = await views(ada)
    assert summary == progress
    assert {name: summary["counts"][name] for name in expected} == expected


async def test_a_learner_is_never_served_another_learners_cached_progress(
    ada: Browser, people: People
) -> None:
    await mark(ada, "http", "done")
    ada_summary = (await ada.client.get(SUMMARY)).json()
    bob = await people("Bob")

    bob_summary = (await bob.client.get(SUMMARY)).json()
    bob_progress = (await bob.client.get(PROGRESS)).json()

    assert ada_summary["summary"]["counts"]["done"] == 3
    assert bob_summary["summary"]["counts"]["done"] == 0
    assert bob_progress["summary"]["counts"]["done"] == 0


async def test_losing_access_to_a_roadmap_hides_its_cached_progress(
    ada: Browser, people: People, client: httpx.AsyncClient
) -> None:
    await ada.client.get(SUMMARY)
    path = "/v1/roadmaps/web"
    etag = (await ada.client.get(path)).headers["etag"]
    bob = await people("Bob")
    await mark(bob, "http", "done")
    assert (await bob.client.get(SUMMARY)).status_code == 200

    await ada.client.patch(
        path,
        json={"visibility": "private"},
        headers={**ada.write_headers, "if-match": etag},
    )

    assert (await bob.client.get(SUMMARY)).status_code == 404
    assert (await ada.client.get(SUMMARY)).status_code == 200


async def test_a_badge_is_cached_and_follows_progress_and_profile_changes(
    ada: Browser, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await ada.client.patch(
        "/v1/me/profile", json={"handle": "ada", "is_public": True}, headers=ada.write_headers
    )
    badge = "/v1/users/ada/badges/web.svg"
    first = await client.get(badge)
    before = cache_of(app).stats.recomputes
    again = await client.get(badge)
    assert cache_of(app).stats.recomputes == before

    await mark(ada, "http", "done")
    after_progress = await client.get(badge)
    await ada.client.patch("/v1/me/profile", json={"is_public": False}, headers=ada.write_headers)
    after_private = await client.get(badge)

    assert "Web: 0%" in first.text
    assert again.content == first.content
    assert "Web: 75%" in after_progress.text
    assert after_private.status_code == 404
