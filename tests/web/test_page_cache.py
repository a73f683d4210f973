"""The roadmap page's learner states come from the cache between views; every change of the
learner's (or of the roadmap, or of their profile) shows on the very next view, and no one is
served another's. Run with the cache in process memory and in a real Redis."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import brotli
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.platform.config import RedisSettings, Settings
from skilltree.platform.http.compression import BROTLI_QUALITY, HTML_BROTLI_QUALITY
from skilltree.progress.service import Event
from skilltree.web import router
from skilltree.web.tree_states import TopicProgress, TreeStates
from skilltree.web.views import Bar
from tests.support.accounts import Browser
from tests.support.progress import API, WEB, People, import_roadmap, mark
from tests.support.queries import count_statements

HTML = {"accept": "text/html"}
PAGE = "/roadmaps/web"


@pytest.fixture
def settings(settings: Settings, shared_state: RedisSettings) -> Settings:
    return settings.model_copy(update={"redis": shared_state})


@pytest.fixture
async def ada(people: People) -> Browser:
    learner = await people("Ada")
    await import_roadmap(learner, WEB, visibility="public")
    return learner


def statuses(page: str) -> dict[str, str]:
    """Each topic's status on a roadmap page, by slug."""
    found = re.findall(r'id="t-([a-z0-9-]+)" data-slug="[a-z0-9-]+" data-status="([a-z_]*)"', page)
    return dict(found)


def whole_bar(page: str) -> tuple[int, int]:
    """Done and counted, of the whole roadmap's bar (the first on the page)."""
    found = re.search(r"<span data-done>(\d+)</span>/<span data-counted>(\d+)</span>", page)
    assert found is not None
    return int(found.group(1)), int(found.group(2))


async def view(learner: Browser) -> str:
    page = await learner.client.get(PAGE, headers=HTML)
    assert page.status_code == 200, page.text
    return page.text


async def test_a_second_view_reads_neither_the_marks_nor_the_profile(
    ada: Browser, engine: AsyncEngine
) -> None:
    await mark(ada, "etags", "done")
    with count_statements(engine) as first:
        first_page = await view(ada)
    with count_statements(engine) as second:
        second_page = await view(ada)

    assert second_page == first_page
    read = " ".join(second.statements)
    assert "topic_progress" not in read
    assert "profiles" not in read
    assert second.count < first.count


# Each write first views the page it is about to change, then makes its change.


async def set_status(ada: Browser) -> None:
    await view(ada)
    await mark(ada, "indexes", "in_progress")


async def set_status_by_the_pages_form(ada: Browser) -> None:
    await view(ada)
    await ada.client.post(
        "/roadmaps/web/topics/indexes/status",
        data={"status": "in_progress", "csrf_token": ada.csrf_token},
        headers={"origin": "http://test"},
    )


async def undo(ada: Browser) -> None:
    await mark(ada, "indexes", "in_progress")
    await mark(ada, "status-codes", "done")
    await view(ada)
    await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)


async def import_file(ada: Browser) -> None:
    await view(ada)
    body = {"format": "skilltree-progress/1", "topics": [{"slug": "indexes", "status": "done"}]}
    await ada.client.post("/v1/me/progress/web/import", json=body, headers=ada.write_headers)


async def mark_a_shared_concept_elsewhere(ada: Browser) -> None:
    # "entity-tags" on the API roadmap teaches the same concept as "etags" on this one.
    await import_roadmap(ada, API)
    await view(ada)
    await mark(ada, "entity-tags", "done", roadmap="api")


async def stop_sharing_by_concept(ada: Browser) -> None:
    await import_roadmap(ada, API)
    await mark(ada, "entity-tags", "done", roadmap="api")
    await view(ada)
    await ada.client.patch(
        "/v1/me/profile", json={"share_progress_by_concept": False}, headers=ada.write_headers
    )


async def add_a_topic_to_the_roadmap(ada: Browser) -> None:
    await mark(ada, "indexes", "done")
    await view(ada)
    await ada.client.post(
        "/v1/roadmaps/web/topics",
        json={"title": "Replication", "slug": "replication"},
        headers=ada.write_headers,
    )


# Each write, the statuses the page shows after it, and the whole roadmap's bar (done, counted).
WRITES: dict[str, tuple[Callable[[Browser], Awaitable[None]], dict[str, str], tuple[int, int]]] = {
    "set a status": (set_status, {"indexes": "in_progress", "databases": "in_progress"}, (0, 4)),
    "set a status by the page's form": (
        set_status_by_the_pages_form,
        {"indexes": "in_progress", "databases": "in_progress"},
        (0, 4),
    ),
    "undo": (undo, {"indexes": "in_progress", "status-codes": "todo"}, (0, 4)),
    "import a progress file": (import_file, {"indexes": "done", "databases": "done"}, (1, 4)),
    "mark a shared concept on another roadmap": (
        mark_a_shared_concept_elsewhere,
        {"etags": "done", "caching": "in_progress", "http": "in_progress"},
        (1, 4),
    ),
    "stop sharing by concept": (stop_sharing_by_concept, {"etags": "todo", "http": "todo"}, (0, 4)),
    "add a topic to the roadmap": (
        add_a_topic_to_the_roadmap,
        {"replication": "todo", "indexes": "done", "databases": "done"},
        (1, 5),
    ),
}


@pytest.mark.parametrize(("write", "expected", "bar"), WRITES.values(), ids=WRITES.keys())
async def test_every_change_shows_on_the_very_next_view(
    ada: Browser,
    write: Callable[[Browser], Awaitable[None]],
    expected: dict[str, str],
    bar: tuple[int, int],
) -> None:
    await write(ada)

    page = await view(ada)
    shown = statuses(page)
    assert {slug: shown.get(slug) for slug in expected} == expected
    assert whole_bar(page) == bar


def topic_status(page: str) -> str:
    found = re.search(r'<header class="topic-head" id="t-[a-z-]+" data-slug="[a-z-]+" '
                      r'data-status="([a-z_]*)"', page)  # fmt: skip
    assert found is not None
    return found.group(1)


async def topic_view(learner: Browser, topic: str) -> str:
    page = await learner.client.get(f"/roadmaps/web/topics/{topic}", headers=HTML)
    assert page.status_code == 200, page.text
    return page.text


async def test_a_second_view_of_a_topic_page_reads_neither_the_marks_nor_the_profile(
    ada: Browser, engine: AsyncEngine
) -> None:
    await mark(ada, "etags", "done")
    with count_statements(engine) as first:
        first_page = await topic_view(ada, "caching")
    with count_statements(engine) as second:
        second_page = await topic_view(ada, "caching")

    assert second_page == first_page
    assert topic_status(second_page) == "in_progress"
    read = " ".join(second.statements)
    assert "FROM topic_progress" not in read
    assert "profiles" not in read
    assert "progress_events" not in read
    assert second.count < first.count


@pytest.mark.parametrize(("write", "expected", "bar"), WRITES.values(), ids=WRITES.keys())
async def test_every_change_shows_on_the_very_next_view_of_a_topic_page(
    ada: Browser,
    write: Callable[[Browser], Awaitable[None]],
    expected: dict[str, str],
    bar: tuple[int, int],
) -> None:
    for topic in expected:
        if topic != "replication":  # added by the write
            await topic_view(ada, topic)

    await write(ada)

    shown = {topic: topic_status(await topic_view(ada, topic)) for topic in expected}
    assert shown == expected


def history_of(page: str) -> list[str]:
    """The topic page's history, newest first, as its lines read."""
    found = re.search(r'<ol class="history">(.*?)</ol>', page)
    if found is None:
        return []
    lines = re.findall(r"<li><time [^>]*>[^<]*</time> (.*?)</li>", found.group(1))
    return [re.sub(r"<[^>]+>", "", line) for line in lines]


async def test_a_topic_pages_history_shows_each_change_on_the_very_next_view(ada: Browser) -> None:
    assert history_of(await topic_view(ada, "indexes")) == []
    await mark(ada, "indexes", "in_progress")
    assert history_of(await topic_view(ada, "indexes")) == ["No status → In progress"]
    await mark(ada, "status-codes", "done")  # another topic: not in this page's history
    await mark(ada, "indexes", "done")
    assert history_of(await topic_view(ada, "indexes")) == [
        "In progress → Done",
        "No status → In progress",
    ]

    await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)

    assert history_of(await topic_view(ada, "indexes")) == [
        "Done → In progress undo",
        "In progress → Done",
        "No status → In progress",
    ]
    assert history_of(await topic_view(ada, "status-codes")) == ["No status → Done"]


def test_a_topics_progress_reads_back_as_it_was_written() -> None:
    at = datetime(2026, 12, 7, 5, 40, 1, 123456, tzinfo=UTC)
    history = [
        Event(2, 7, "in_progress", None, None, at, "req-2", 1),
        Event(1, 7, None, "in_progress", 3, at.replace(tzinfo=None), None, None),
    ]
    mine = TopicProgress("in_progress", history)

    again = TopicProgress.from_bytes(mine.to_bytes())

    assert again == TopicProgress("in_progress", again.history)
    assert list(again.history) == history
    assert [event.occurred_at.tzinfo for event in again.history] == [UTC, None]


async def test_a_learner_is_never_served_another_learners_cached_states(
    ada: Browser, people: People
) -> None:
    await mark(ada, "http", "done")
    assert statuses(await view(ada))["http"] == "done"
    bob = await people("Bob")

    page = await view(bob)

    assert statuses(page)["http"] == "todo"
    assert whole_bar(page) == (0, 4)


async def test_losing_access_to_a_roadmap_hides_its_page_with_its_cached_states(
    ada: Browser, people: People
) -> None:
    bob = await people("Bob")
    await mark(bob, "http", "done")
    await view(bob)
    etag = (await ada.client.get("/v1/roadmaps/web")).headers["etag"]

    await ada.client.patch(
        "/v1/roadmaps/web",
        json={"visibility": "private"},
        headers={**ada.write_headers, "if-match": etag},
    )

    assert (await bob.client.get(PAGE, headers=HTML)).status_code == 404
    assert (await ada.client.get(PAGE, headers=HTML)).status_code == 200


def test_states_read_back_as_they_were_written() -> None:
    bars = [Bar(33.3, 1, 3, 2.5), None, Bar(100.0, 2, 2, 0.0), None, None]
    states = TreeStates(["in_progress", "done", "done", None, "todo"], bars, Bar(0.0, 0, 0, 0.0))

    again = TreeStates.from_bytes(states.to_bytes())

    assert again == states
    assert [type(bar.percent) for bar in again.bars if bar] == [float, float]


def test_a_docs_link_is_found_by_walking_the_routes_once_per_endpoint(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = ["GET /v1/roadmaps/{slug}", "PATCH /v1/roadmaps/{slug}", "GET /v1/no-such-route"]
    # What each topic page computed by walking the routes before the links were kept.
    expected = {endpoint: router._walked_docs_link(app, endpoint) for endpoint in endpoints}
    assert str(expected["GET /v1/roadmaps/{slug}"]).startswith("/docs#/")
    assert expected["GET /v1/no-such-route"] is None
    walks = []
    original = iter_route_contexts

    def counted(routes: Any) -> Any:
        walks.append(1)
        return original(routes)

    monkeypatch.setattr(router, "iter_route_contexts", counted)
    request = SimpleNamespace(app=app)
    for _ in range(3):
        shown = {endpoint: router._docs_link(request, endpoint) for endpoint in endpoints}  # type: ignore[arg-type]
        assert shown == expected
    assert len(walks) == len(endpoints)


async def test_a_page_is_compressed_at_the_quality_chosen_for_pages(ada: Browser) -> None:
    plain = await ada.client.get(PAGE, headers={**HTML, "accept-encoding": "identity"})
    request = ada.client.build_request("GET", PAGE, headers={**HTML, "accept-encoding": "br"})
    response = await ada.client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.headers["content-encoding"] == "br"
    assert brotli.decompress(raw) == plain.content
    assert raw == brotli.compress(plain.content, quality=HTML_BROTLI_QUALITY)
    assert HTML_BROTLI_QUALITY < BROTLI_QUALITY
