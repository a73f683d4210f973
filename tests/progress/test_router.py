"""Progress as a learner sees it through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from skilltree.platform.clock import FrozenClock
from tests.support.accounts import Browser
from tests.support.progress import API, WEB, People, by_slug, import_roadmap, mark


async def progress(learner: Browser, roadmap: str = "web") -> dict[str, dict[str, Any]]:
    response = await learner.client.get(f"/v1/me/progress/{roadmap}")
    assert response.status_code == 200, response.text
    return by_slug(response.json()["topics"])


async def history(learner: Browser, roadmap: str = "web") -> list[dict[str, Any]]:
    response = await learner.client.get(f"/v1/me/progress/{roadmap}/history?limit=100")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_status_set_shows_in_the_roadmap_progress(ada: Browser) -> None:
    response = await mark(ada, "etags", "done", confidence=4)

    assert response.status_code == 200
    assert response.json()["status"] == "done"
    topics = await progress(ada)
    assert (topics["etags"]["status"], topics["etags"]["source"]) == ("done", "own")
    assert topics["etags"]["confidence"] == 4
    assert (topics["caching"]["status"], topics["caching"]["source"]) == ("in_progress", "derived")
    assert topics["http"]["status"] == "in_progress"
    assert (topics["indexes"]["status"], topics["indexes"]["source"]) == ("todo", "default")


async def test_a_parent_is_done_when_every_child_is_done_or_skipped(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    await mark(ada, "cache-control", "skipped")

    topics = await progress(ada)

    assert (topics["caching"]["status"], topics["caching"]["percent_done"]) == ("done", 100.0)
    assert topics["http"]["status"] == "in_progress"  # status codes are still to do


async def test_a_status_set_on_a_parent_wins_and_counts_for_its_leaves(ada: Browser) -> None:
    await mark(ada, "http", "done")

    summary = (await ada.client.get("/v1/me/progress/web/summary")).json()

    http = next(s for s in summary["sections"] if s["slug"] == "http")
    assert http["status"] == "done"
    assert http["summary"]["counts"] == {"todo": 0, "in_progress": 0, "done": 3, "skipped": 0}
    assert summary["summary"]["percent_done"] == 75.0
    assert summary["summary"]["remaining_hours"] == 3.0


async def test_the_summary_counts_leaves_percent_done_and_remaining_hours(ada: Browser) -> None:
    await mark(ada, "status-codes", "done")
    await mark(ada, "etags", "in_progress")
    await mark(ada, "indexes", "skipped")

    response = await ada.client.get("/v1/me/progress/web/summary")

    assert response.headers["cache-control"] == "private, no-store"
    summary = response.json()["summary"]
    assert summary["counts"] == {"todo": 1, "in_progress": 1, "done": 1, "skipped": 1}
    assert summary["total"] == 4
    assert summary["percent_done"] == pytest.approx(33.3)
    assert (summary["total_hours"], summary["remaining_hours"]) == (7.0, 2.0)


async def test_repeating_the_same_status_records_no_new_event(ada: Browser) -> None:
    await mark(ada, "etags", "done", confidence=3)
    await mark(ada, "etags", "done", confidence=3)
    await mark(ada, "etags", "done", confidence=5)

    events = await history(ada)

    assert [(e["from_status"], e["to_status"], e["confidence"]) for e in events] == [
        ("done", "done", 5),
        (None, "done", 3),
    ]


async def test_every_event_keeps_who_what_when_and_the_request_id(
    ada: Browser, clock: FrozenClock
) -> None:
    response = await ada.client.put(
        "/v1/me/progress/web/etags",
        json={"status": "in_progress"},
        headers={**ada.write_headers, "x-request-id": "req-progress-1"},
    )
    assert response.status_code == 200

    (event,) = await history(ada)

    assert event["topic"] == "etags"
    assert event["topic_title"] == "ETags"
    assert event["request_id"] == "req-progress-1"
    assert event["occurred_at"].startswith(clock.now().isoformat()[:19])


async def test_undo_reverts_the_newest_change_and_can_go_further_back(ada: Browser) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "done", confidence=2)
    await mark(ada, "indexes", "done")

    first = await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)
    second = await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)

    assert first.status_code == second.status_code == 200
    assert first.json()["event"]["topic"] == "indexes"
    assert second.json()["event"]["to_status"] == "in_progress"
    topics = await progress(ada)
    assert topics["indexes"]["source"] == "default"
    assert (topics["etags"]["status"], topics["etags"]["confidence"]) == ("in_progress", None)
    # The log only grows: three changes and two undos.
    assert len(await history(ada)) == 5


async def test_undo_with_nothing_left_is_a_409_problem(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    assert (
        await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)
    ).status_code == 200

    response = await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/nothing-to-undo"


async def test_a_retried_undo_with_the_same_key_undoes_only_one_change(ada: Browser) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "done")
    headers = ada.write_headers | {"idempotency-key": "undo-1"}

    first = await ada.client.post("/v1/me/progress/web/undo", headers=headers)
    retry = await ada.client.post("/v1/me/progress/web/undo", headers=headers)

    assert first.status_code == retry.status_code == 200
    assert retry.headers["idempotency-replayed"] == "true"
    assert retry.content == first.content
    assert (await progress(ada))["etags"]["status"] == "in_progress"  # not back to untouched
    assert len(await history(ada)) == 3  # two changes, one undo


async def test_a_new_key_undoes_the_next_change(ada: Browser) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "etags", "done")

    for key in ("undo-1", "undo-2"):
        response = await ada.client.post(
            "/v1/me/progress/web/undo", headers=ada.write_headers | {"idempotency-key": key}
        )
        assert response.status_code == 200

    assert (await progress(ada))["etags"]["source"] == "default"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "finished"}, "body.status"),
        ({"status": "done", "confidence": 6}, "body.confidence"),
        ({"status": "done", "confidence": 0}, "body.confidence"),
        ({"status": "done", "extra": 1}, "body.extra"),
        ({}, "body.status"),
    ],
)
async def test_bad_input_is_a_422_problem_and_records_nothing(
    ada: Browser, body: dict[str, Any], field: str
) -> None:
    response = await ada.client.put(
        "/v1/me/progress/web/etags", json=body, headers=ada.write_headers
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await history(ada) == []


async def test_an_unknown_topic_is_a_404_problem(ada: Browser) -> None:
    response = await mark(ada, "no-such-topic", "done")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/topic-not-found"


async def test_progress_on_a_concept_shows_in_every_roadmap_teaching_it(
    ada: Browser, clock: FrozenClock
) -> None:
    await import_roadmap(ada, API)
    await mark(ada, "etags", "done")

    shared = (await progress(ada, "api"))["entity-tags"]

    assert (shared["status"], shared["source"]) == ("done", "concept")
    # A newer mark on either topic is the concept's state everywhere.
    clock.advance(minutes=1)
    await mark(ada, "entity-tags", "in_progress", roadmap="api")
    assert (await progress(ada))["etags"]["status"] == "in_progress"


async def test_concept_sharing_can_be_turned_off_in_the_profile(ada: Browser) -> None:
    await import_roadmap(ada, API)
    await mark(ada, "etags", "done")
    response = await ada.client.patch(
        "/v1/me/profile", json={"share_progress_by_concept": False}, headers=ada.write_headers
    )
    assert response.status_code == 200

    assert (await progress(ada, "api"))["entity-tags"]["status"] == "todo"


async def test_progress_survives_renames_and_moves_of_its_topic(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    edited = {
        **WEB,
        "topics": [
            {"slug": "http", "title": "HTTP", "children": [WEB["topics"][0]["children"][0]]},
            {
                "slug": "databases",
                "title": "Databases",
                "children": [
                    {"slug": "indexes", "title": "Indexes"},
                    {"slug": "etags", "title": "Entity tags (ETags)"},
                ],
            },
        ],
    }

    await import_roadmap(ada, edited, visibility="public")

    topics = await progress(ada)
    assert (topics["etags"]["title"], topics["etags"]["status"]) == ("Entity tags (ETags)", "done")
    assert topics["databases"]["status"] == "in_progress"


async def test_one_learner_never_sees_anothers_progress(ada: Browser, people: People) -> None:
    await mark(ada, "etags", "done")
    await import_roadmap(ada, API)  # private to Ada
    bob = await people("Bob")

    assert (await progress(bob))["etags"]["status"] == "todo"
    assert await history(bob) == []
    private = await bob.client.get("/v1/me/progress/api")
    assert private.status_code == 404
    assert (await mark(bob, "entity-tags", "done", roadmap="api")).status_code == 404
    undo = await bob.client.post("/v1/me/progress/web/undo", headers=bob.write_headers)
    assert undo.status_code == 409
    assert (await progress(ada))["etags"]["status"] == "done"


async def test_anonymous_callers_are_refused(client: httpx.AsyncClient, ada: Browser) -> None:
    response = await client.get("/v1/me/progress/web")

    assert response.status_code == 401


async def test_history_pages_follow_links_both_ways(ada: Browser, clock: FrozenClock) -> None:
    for topic in ("etags", "indexes", "status-codes", "cache-control", "caching"):
        await mark(ada, topic, "done")
        clock.advance(seconds=30)

    first = await ada.client.get("/v1/me/progress/web/history", params={"limit": 2})
    second = await ada.client.get(first.json()["links"]["next"])
    third = await ada.client.get(second.json()["links"]["next"])
    back = await ada.client.get(third.json()["links"]["prev"])

    def topics(response: httpx.Response) -> list[str]:
        return [event["topic"] for event in response.json()["items"]]

    assert topics(first) == ["caching", "cache-control"]
    assert topics(second) == ["status-codes", "indexes"]
    assert topics(third) == ["etags"]
    assert third.json()["links"]["next"] is None
    assert topics(back) == ["status-codes", "indexes"]
    assert f'<{second.json()["links"]["next"]}>; rel="next"' in second.headers["link"]


@pytest.mark.parametrize(
    ("cursor", "status"),
    [("not-a-cursor", 400), ("eyJkIjoibmV4dCJ9.AAAA", 400), ("x" * 600, 422)],
)
async def test_a_bad_history_cursor_is_a_problem_not_a_500(
    ada: Browser, cursor: str, status: int
) -> None:
    response = await ada.client.get("/v1/me/progress/web/history", params={"cursor": cursor})

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
