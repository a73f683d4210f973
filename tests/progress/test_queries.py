"""No N+1: progress reads run the same number of statements for any roadmap size."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.orgs.models import Organisation
from skilltree.roadmaps.models import Roadmap, Topic
from tests.support.accounts import Browser, bearer_headers
from tests.support.progress import People, import_roadmap, mark
from tests.support.queries import count_statements


def roadmap(slug: str, sections: int, per_section: int) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": slug.title(),
        "topics": [
            {
                "slug": f"s{s}",
                "title": f"Section {s}",
                "children": [
                    {
                        "slug": f"s{s}-t{t}",
                        "title": f"Topic {s}.{t}",
                        "concept": f"concept-{t}",
                        "estimate_hours": 1,
                        "children": [{"slug": f"s{s}-t{t}-sub", "title": f"Sub {s}.{t}"}],
                    }
                    for t in range(per_section)
                ],
            }
            for s in range(sections)
        ],
    }


@pytest.fixture
async def learner(people: People) -> Browser:
    ada = await people("Ada")
    await import_roadmap(ada, roadmap("small", 1, 1))
    await import_roadmap(ada, roadmap("large", 10, 20))
    for slug in ("small", "large"):
        await mark(ada, "s0-t0-sub", "done", roadmap=slug)
        await mark(ada, "s0", "in_progress", roadmap=slug)
    return ada


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/me/progress/{}", None),
        ("GET", "/v1/me/progress/{}/summary", None),
        ("GET", "/v1/me/progress/{}/history", None),
        ("GET", "/v1/me/progress/{}/export", None),
        ("PUT", "/v1/me/progress/{}/s0-t0", {"status": "skipped"}),
    ],
)
async def test_statements_do_not_grow_with_the_roadmap(
    learner: Browser, engine: AsyncEngine, method: str, path: str, body: dict[str, str] | None
) -> None:
    counts = {}
    for slug in ("small", "large"):
        with count_statements(engine) as log:
            response = await learner.client.request(
                method, path.format(slug), json=body, headers=learner.write_headers
            )
        assert response.status_code == 200, response.text
        counts[slug] = log.count

    assert counts["small"] == counts["large"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/me/progress/{}",
        "/v1/me/progress/{}/summary",
        "/v1/me/progress/{}/s0-t0/note",
    ],
)
async def test_a_revalidation_costs_the_same_statements_whatever_the_roadmap_size(
    learner: Browser, engine: AsyncEngine, path: str
) -> None:
    counts = {}
    for slug in ("small", "large"):
        etag = (await learner.client.get(path.format(slug))).headers["etag"]
        with count_statements(engine) as log:
            response = await learner.client.get(path.format(slug), headers={"if-none-match": etag})
        assert response.status_code == 304
        counts[slug] = log.count

    assert counts["small"] == counts["large"]


async def test_writing_a_note_costs_the_same_statements_whatever_the_roadmap_size(
    learner: Browser, engine: AsyncEngine
) -> None:
    counts = {}
    for slug in ("small", "large"):
        with count_statements(engine) as log:
            response = await learner.client.put(
                f"/v1/me/progress/{slug}/s0-t0/note",
                json={"markdown": "notes"},
                headers=learner.write_headers,
            )
        assert response.status_code == 201, response.text
        counts[slug] = log.count

    assert counts["small"] == counts["large"]


@pytest.mark.parametrize("slug", ["small", "large"])
async def test_setting_a_status_reads_only_the_ids_of_its_roadmap_and_topic(
    learner: Browser, engine: AsyncEngine, slug: str
) -> None:
    loaded: list[object] = []

    def record(row: object, _context: Any) -> None:
        loaded.append(row)

    for model in (Roadmap, Topic):
        event.listen(model, "load", record)
    try:
        with count_statements(engine) as log:
            response = await learner.client.put(
                f"/v1/me/progress/{slug}/s0-t0",
                json={"status": "in_progress"},
                headers=learner.write_headers,
            )
    finally:
        for model in (Roadmap, Topic):
            event.remove(model, "load", record)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "in_progress"
    assert loaded == []
    reads = [s for s in log.statements if "FROM roadmaps" in s or "FROM topics" in s]
    # Which roadmap and topic, in one statement; what the topic says is never read.
    lookups = [s for s in reads if "topics.slug =" in s]
    assert len(lookups) == 1, reads
    for column in ("resources", "implemented_in", "tags", "seeds", "aliases", "why", "summary"):
        assert not any(f"topics.{column}" in statement for statement in reads)
    assert not any("roadmaps.description" in statement for statement in reads)


async def test_a_status_change_runs_a_fixed_handful_of_statements(
    learner: Browser, engine: AsyncEngine
) -> None:
    # The roadmap's and topic's ids; the learner's lock (none on SQLite, which has one
    # writer); the projection row, the event, the projection's update and the outbox row (on
    # PostgreSQL one statement, decisions 0063 and 0073). The caller's organisation roles are
    # kept with the caller (decision 0067). Nothing after the commit: the event carries the
    # slugs the live progress channel shows.
    expected = {"postgresql": 3, "sqlite": 5}.get(engine.dialect.name, 6)

    with count_statements(engine) as log:
        response = await learner.client.put(
            "/v1/me/progress/large/s3-t3",
            json={"status": "in_progress"},
            headers=learner.write_headers,
        )

    assert response.status_code == 200, response.text
    assert log.count == expected, "\n".join(log.statements)


async def test_finishing_a_topic_makes_its_review_card_in_two_statements_and_checks_in_one(
    learner: Browser, engine: AsyncEngine
) -> None:
    """The card check and the card's insert are one `INSERT … SELECT … WHERE NOT EXISTS`; a new
    card's scheduler state, which holds its id, follows. Finishing it again after a detour
    through in progress (the card stays) only checks. (Was: a SELECT, then for a new card an
    INSERT and an UPDATE.)"""

    async def card_statements_of_done() -> list[str]:
        with count_statements(engine) as log:
            response = await learner.client.put(
                "/v1/me/progress/large/s3-t3",
                json={"status": "done"},
                headers=learner.write_headers,
            )
        assert response.status_code == 200, response.text
        return [s for s in log.statements if "review_cards" in s]

    first = await card_statements_of_done()
    await mark(learner, "s3-t3", "in_progress", roadmap="large")
    again = await card_statements_of_done()
    due = await learner.client.get("/v1/me/reviews/due", params={"limit": 100})

    assert len(first) == 2, first
    assert first[0].startswith("INSERT INTO review_cards"), first
    assert len(again) == 1, again
    assert again[0].startswith("INSERT INTO review_cards"), again
    assert [card["topic"] for card in due.json()["items"]].count("s3-t3") == 1


async def test_finishing_a_topic_outside_any_organisation_rolls_up_no_progress(
    learner: Browser, engine: AsyncEngine
) -> None:
    # Finishing a topic makes feed lines and completes assignments in the learner's
    # organisations: with none, the roadmap's outline is not read to roll its progress up.
    with count_statements(engine) as log:
        response = await learner.client.put(
            "/v1/me/progress/large/s1-t1", json={"status": "done"}, headers=learner.write_headers
        )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    outline_reads = [s for s in log.statements if "topics.summary" in s]
    assert outline_reads == []


async def test_a_cached_progress_read_by_bearer_token_runs_one_statement(
    ada: Browser, engine: AsyncEngine
) -> None:
    # Whether they may see the roadmap: access is decided afresh even when the body is
    # cached. The token's caller and their organisation roles are known from the first read
    # (accounts/principal_cache.py), and forgotten on every instance when either changes.
    bearer = await bearer_headers(ada)
    await ada.client.get("/v1/me/progress/web", headers=bearer)  # computed and cached

    with count_statements(engine) as log:
        response = await ada.client.get("/v1/me/progress/web", headers=bearer)

    assert response.status_code == 200, response.text
    assert log.count == 1, log.statements


@pytest.mark.parametrize("credential", ["cookie", "bearer"])
async def test_a_cached_progress_read_loads_no_roadmap_or_organisation(
    ada: Browser, credential: str
) -> None:
    headers = await bearer_headers(ada) if credential == "bearer" else {}
    await ada.client.get("/v1/me/progress/web", headers=headers)
    loaded: list[object] = []

    def record(row: object, _context: Any) -> None:
        loaded.append(row)

    for model in (Roadmap, Organisation):
        event.listen(model, "load", record)
    try:
        response = await ada.client.get("/v1/me/progress/web", headers=headers)
    finally:
        for model in (Roadmap, Organisation):
            event.remove(model, "load", record)

    assert response.status_code == 200, response.text
    assert loaded == []


@pytest.mark.parametrize("path", ["/v1/me/progress/{}", "/v1/me/progress/{}/summary"])
async def test_progress_views_read_only_the_outline_of_the_roadmap(
    learner: Browser, engine: AsyncEngine, path: str
) -> None:
    with count_statements(engine) as log:
        response = await learner.client.get(path.format("large"))

    assert response.status_code == 200, response.text
    topic_reads = [statement for statement in log.statements if "FROM topics" in statement]
    assert topic_reads, "computed from the database, not the cache"
    for column in ("resources", "implemented_in", "tags", "seeds", "aliases", "why"):
        assert not any(f"topics.{column}" in statement for statement in topic_reads)
