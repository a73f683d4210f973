"""No learner loses progress when a roadmap is edited: progress is keyed to topic ids.

A learner works through a custom roadmap; its owner then renames topics, moves one under another
parent, deletes a section, publishes a revision and re-imports the exported document. On every
surviving topic the learner's statuses, history, summaries, note and review cards are exactly
as before. The deleted section's progress goes with it (its topics no longer exist): that is the
one loss, and the test says how much of the summary it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.reviews.models import ReviewCard, ReviewLogEntry
from tests.support.accounts import Browser
from tests.support.progress import People, by_slug, mark

PLAN = "/v1/roadmaps/plan"
PROGRESS = "/v1/me/progress/plan"
# The tree the owner builds: (slug, title, parent). Every parent of a moved topic stays a
# parent and stays done, so the roll-up of every surviving topic is unchanged by the edits.
TOPICS = [
    ("http", "HTTP", None),
    ("caching", "Caching", "http"),
    ("etags", "ETags", "caching"),
    ("cache-control", "Cache-Control", "caching"),
    ("headers", "Headers", "http"),
    ("vary", "Vary", "headers"),
    ("status-codes", "Status codes", "http"),
    ("databases", "Databases", None),
    ("indexes", "Indexes", "databases"),
    ("transactions", "Transactions", "databases"),
    ("replication", "Replication", "databases"),
    ("queues", "Queues", None),
    ("dead-letters", "Dead letters", "queues"),
]
RENAMED = {"caching": "http-caching"}  # old slug -> new slug
DELETED = {"queues", "dead-letters"}


@pytest.fixture
async def owner(people: People) -> Browser:
    olga = await people("Olga")
    olga.client.headers.update(olga.write_headers)
    created = await olga.client.post(
        "/v1/roadmaps", json={"slug": "plan", "title": "Plan", "visibility": "public"}
    )
    assert created.status_code == 201, created.text
    for slug, title, parent in TOPICS:
        body = {"slug": slug, "title": title} | ({"parent": parent} if parent else {})
        response = await olga.client.post(f"{PLAN}/topics", json=body)
        assert response.status_code == 201, response.text
    return olga


@dataclass(frozen=True)
class Learner:
    browser: Browser
    rated_card: int  # rated once, so no longer due: checked in the database


@pytest.fixture
async def learner(owner: Browser, people: People) -> Learner:
    lea = await people("Lea")
    for topic, status in [
        ("etags", "done"),
        ("cache-control", "done"),
        ("vary", "done"),
        ("status-codes", "in_progress"),
        ("indexes", "done"),
        ("dead-letters", "done"),
        ("transactions", "in_progress"),
        ("transactions", "skipped"),
    ]:
        assert (await mark(lea, topic, status, roadmap="plan", confidence=3)).status_code == 200
    # Undo the skip: the history then holds an undo event too.
    undone = await lea.client.post(f"{PROGRESS}/undo", headers=lea.write_headers)
    assert undone.status_code == 200
    note = await lea.client.put(
        f"{PROGRESS}/indexes/note", json={"markdown": "B-trees"}, headers=lea.write_headers
    )
    assert note.status_code == 201
    card = next(c for c in await due_cards(lea) if c["topic"] == "indexes")
    rated = await lea.client.post(
        f"/v1/me/reviews/{card['id']}", json={"rating": "good"}, headers=lea.write_headers
    )
    assert rated.status_code == 200
    return Learner(lea, card["id"])


async def edit_the_roadmap(owner: Browser) -> None:
    """Rename, move, delete, publish, re-import: everything an owner does to a roadmap."""
    renamed = await patch(owner, "caching", {"slug": "http-caching", "title": "HTTP caching"})
    retitled = await patch(owner, "status-codes", {"title": "HTTP status codes"})
    moved = await patch(owner, "cache-control", {"parent": "headers", "position": 0})
    deleted = await owner.client.delete(
        f"{PLAN}/topics/queues", headers={"if-match": await etag(owner, "queues")}
    )
    published = await owner.client.post(f"{PLAN}/revisions", json={"note": "reshuffled"})
    exported = await owner.client.get(f"{PLAN}/export", headers={"accept": "application/json"})
    reimported = await owner.client.post(
        "/v1/roadmaps/import",
        content=exported.content,
        headers={"content-type": "application/json"},
    )

    assert [r.status_code for r in (renamed, retitled, moved)] == [200, 200, 200]
    assert (deleted.status_code, published.status_code) == (204, 201)
    assert reimported.status_code == 200, reimported.text
    assert reimported.json()["changes"]["unchanged"] == len(TOPICS) - len(DELETED)


async def test_every_surviving_topic_keeps_the_learners_progress(
    owner: Browser, learner: Learner, session: AsyncSession
) -> None:
    before = await snapshot(learner.browser)
    card_before = await card_state(session, learner.rated_card)

    await edit_the_roadmap(owner)

    after = await snapshot(learner.browser)
    survivors = {old: RENAMED.get(old, old) for old, _, _ in TOPICS if old not in DELETED}
    # Statuses: own marks, derived roll-ups, confidence and when each was set.
    assert {new: after["topics"][new] for new in survivors.values()} == {
        survivors[old]: state for old, state in before["topics"].items() if old in survivors
    }
    assert not DELETED & set(after["topics"])
    # History: the same events, newest first, minus the deleted topic's.
    assert after["history"] == [
        event | {"topic": RENAMED.get(event["topic"], event["topic"])}
        for event in before["history"]
        if event["topic"] not in DELETED
    ]
    # Summaries: the sections that survive are unchanged; the roadmap loses the deleted one's.
    assert after["sections"] == {k: v for k, v in before["sections"].items() if k not in DELETED}
    assert after["summary"] == summary_without(before["summary"], before["sections"]["queues"])
    # The note and the review cards (the rated one with its schedule and its log).
    assert after["note"] == before["note"]
    assert after["cards"] == [c for c in before["cards"] if c["topic"] != "dead-letters"]
    assert len(before["cards"]) == len(after["cards"]) + 1
    assert await card_state(session, learner.rated_card) == card_before


async def snapshot(learner: Browser) -> dict[str, Any]:
    """What the learner sees of their progress, keyed by slug, titles left out (they change)."""
    tree = (await learner.client.get(PROGRESS)).json()
    summary = (await learner.client.get(f"{PROGRESS}/summary")).json()
    history = (await learner.client.get(f"{PROGRESS}/history", params={"limit": 100})).json()
    note = (await learner.client.get(f"{PROGRESS}/indexes/note")).json()
    cards = await due_cards(learner)
    untitled = {"title", "children", "slug", "topic_title", "links"}
    return {
        "topics": {
            slug: {k: v for k, v in state.items() if k not in untitled}
            for slug, state in by_slug(tree["topics"]).items()
        },
        "history": [
            {k: v for k, v in event.items() if k not in untitled} for event in history["items"]
        ],
        "summary": summary["summary"],
        "sections": {
            s["slug"]: s["summary"] | {"status": s["status"]} for s in summary["sections"]
        },
        "note": note,
        "cards": [{k: v for k, v in card.items() if k not in untitled} for card in cards],
    }


def summary_without(total: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    counts = {status: n - section["counts"][status] for status, n in total["counts"].items()}
    counted = sum(counts.values()) - counts["skipped"]
    return {
        "total": total["total"] - section["total"],
        "counts": counts,
        "percent_done": round(100 * counts["done"] / counted, 1),
        "total_hours": total["total_hours"] - section["total_hours"],
        "remaining_hours": total["remaining_hours"] - section["remaining_hours"],
    }


async def due_cards(learner: Browser) -> list[dict[str, Any]]:
    response = await learner.client.get("/v1/me/reviews/due", params={"limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def card_state(session: AsyncSession, card_id: int) -> list[Any]:
    """The card's schedule and its review log, read as plain rows (never a cached object)."""
    card = await session.execute(
        select(
            ReviewCard.topic_id, ReviewCard.due, ReviewCard.fsrs_card, ReviewCard.retired_at
        ).where(ReviewCard.id == card_id)
    )
    log = await session.execute(
        select(ReviewLogEntry.rating, ReviewLogEntry.reviewed_at, ReviewLogEntry.due_after).where(
            ReviewLogEntry.card_id == card_id
        )
    )
    rows = [tuple(row) for row in card.all()] + [tuple(row) for row in log.all()]
    assert len(rows) == 2  # the card and its one review
    return rows


async def patch(owner: Browser, slug: str, body: dict[str, Any]) -> Any:
    return await owner.client.patch(
        f"{PLAN}/topics/{slug}", json=body, headers={"if-match": await etag(owner, slug)}
    )


async def etag(owner: Browser, slug: str) -> str:
    return (await owner.client.get(f"{PLAN}/topics/{slug}")).headers["etag"]
