"""Search fixtures: roadmaps of every visibility, notes and resources, and an indexer that
applies the pending domain events the way the worker does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from skilltree.platform import events
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from skilltree.platform.state import Resources
from skilltree.search.tasks import INDEXER
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]
Indexer = Callable[[], Awaitable[int]]

PUBLIC_ROADMAP: dict[str, Any] = {
    "slug": "web",
    "title": "Web",
    "topics": [
        {
            "slug": "http",
            "title": "HTTP",
            "summary": "The protocol of the web.",
            "children": [
                {
                    "slug": "idempotency-keys",
                    "title": "Idempotency keys",
                    "summary": "Retrying an unsafe request without doing the work twice.",
                },
                {
                    "slug": "http-caching",
                    "title": "HTTP caching",
                    "summary": "Cache-Control, ETags and conditional requests save bandwidth.",
                },
                {
                    "slug": "cafe-protocol",
                    "title": "Café au lait protocol",
                    "summary": "A joke protocol about coffee.",
                },
            ],
        },
        {
            "slug": "queues",
            "title": "Message queues",
            "summary": "Work handed to a broker; retries and a dead-letter queue for failures.",
            "children": [
                {
                    "slug": "dead-letter-queues",
                    "title": "Dead-letter queues",
                    "summary": "Where messages go after their last retry.",
                },
                {
                    "slug": "retries",
                    "title": "Retries with backoff",
                    "summary": "Exponential backoff with jitter; idempotency makes retries safe.",
                },
            ],
        },
    ],
}


def secret_roadmap(slug: str, word: str) -> dict[str, Any]:
    """A roadmap whose only topic mentions `word` (and 'zebra', shared by every roadmap)."""
    return {
        "slug": slug,
        "title": f"{word} roadmap",
        "topics": [
            {
                "slug": f"{slug}-topic",
                "title": f"{word} zebra",
                "summary": f"Only readers of {slug} may know about {word} zebra.",
            }
        ],
    }


async def import_roadmap(
    author: Browser, document: dict[str, Any], visibility: str = "public", org: str | None = None
) -> None:
    params = {"visibility": visibility} | ({"org": org} if org else {})
    response = await author.client.post(
        "/v1/roadmaps/import", json=document, params=params, headers=author.write_headers
    )
    assert response.status_code in (200, 201), response.text


async def write_note(learner: Browser, roadmap: str, topic: str, markdown: str) -> None:
    url = f"/v1/me/progress/{roadmap}/{topic}/note"
    current = await learner.client.get(url)
    headers = dict(learner.write_headers)
    if current.json()["updated_at"] is not None:
        headers["if-match"] = current.headers["etag"]
    response = await learner.client.put(url, json={"markdown": markdown}, headers=headers)
    assert response.status_code in (200, 201), response.text


async def add_resource(learner: Browser, roadmap: str, topic: str, title: str, url: str) -> int:
    response = await learner.client.post(
        f"/v1/me/progress/{roadmap}/{topic}/resources",
        json={"title": title, "url": url},
        headers=learner.write_headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def search(client: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def topics_of(body: dict[str, Any]) -> list[str]:
    return [hit["topic"] for hit in body["items"]]


@pytest.fixture
def index_pending(app: FastAPI) -> Indexer:
    """Apply every domain event in the outbox to the search index, once each, through the
    indexer's consumer and its dedupe marks (as `events.deliver` does in the worker)."""
    resources: Resources = app.state.resources

    async def run() -> int:
        job = Job(resources=resources, task_id="test", attempt=1, max_attempts=1)
        query = select(OutboxMessage).where(OutboxMessage.task_name == events.DELIVER_TASK)
        async with resources.database.unit_of_work() as session:
            rows = (await session.scalars(query.order_by(OutboxMessage.id))).all()
            payloads = [row.args[0] for row in rows]
        applied = 0
        for payload in payloads:
            event = events.Event.from_payload(payload)
            if INDEXER.wants(event):
                applied += await events.apply_once(job, INDEXER, event)
        return applied

    return run


@pytest.fixture
async def ada(people: People, index_pending: Indexer) -> Browser:
    """A learner who published the public roadmap; the index is up to date."""
    author = await people("Ada")
    await import_roadmap(author, PUBLIC_ROADMAP)
    await index_pending()
    return author


@pytest.fixture(autouse=True)
def _committed_rows_only_on_mariadb(request: pytest.FixtureRequest) -> None:
    """InnoDB FULLTEXT indexes see committed rows only, and every test here runs in one
    transaction that is rolled back; tests/search/test_mariadb_fulltext.py searches MariaDB
    with real commits instead."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("engine") == "mariadb":
        pytest.skip("InnoDB FULLTEXT sees committed rows only (test_mariadb_fulltext.py)")
