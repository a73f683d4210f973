"""Cohorts over HTTP: the mentors' view, assignments and the activity feed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from skilltree.cohorts.tasks import assignment_reminders
from skilltree.platform.broadcast import user_channel
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.queue.tasks import Job
from tests.orgs.test_router import create_org, invite_and_join
from tests.reviews.test_reminders import reminders_queued
from tests.support.accounts import Browser, user_id
from tests.support.background import make_resources
from tests.support.progress import WEB, import_roadmap, mark

People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def cohort(people: People, outbox: Path) -> dict[str, Browser]:
    """cohort-7: Ada owns it, Mia mentors, Lee and Kim learn; the public roadmap `web`."""
    ada, mia, lee, kim = [await people(n) for n in ("Ada", "Mia", "Lee", "Kim")]
    await create_org(ada)
    await invite_and_join(ada, mia, outbox, "mentor", "mia@example.org")
    await invite_and_join(ada, lee, outbox, "learner", "lee@example.org")
    await invite_and_join(ada, kim, outbox, "learner", "kim@example.org")
    await import_roadmap(ada, WEB, visibility="public")
    return {"ada": ada, "mia": mia, "lee": lee, "kim": kim}


async def assign(by: Browser, **body: Any) -> list[dict[str, Any]]:
    response = await by.client.post(
        "/v1/orgs/cohort-7/assignments", json={"roadmap": "web", **body}, headers=by.write_headers
    )
    assert response.status_code == 201, response.text
    return list(response.json()["items"])


async def feed_kinds(person: Browser) -> list[str]:
    response = await person.client.get("/v1/orgs/cohort-7/feed")
    assert response.status_code == 200, response.text
    return [item["kind"] for item in response.json()["items"]]


async def test_a_mentor_sees_each_members_percentage_streak_and_stuck_topics(
    cohort: dict[str, Browser],
) -> None:
    await assign(cohort["mia"])
    await mark(cohort["lee"], "status-codes", "done")
    await mark(cohort["lee"], "indexes", "in_progress")

    response = await cohort["mia"].client.get("/v1/orgs/cohort-7/progress")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["roadmaps"] == [{"slug": "web", "title": "Web"}]
    lee = next(m for m in body["members"] if m["display_name"] == "Lee")
    web = lee["roadmaps"][0]
    assert (web["done"], web["total"], web["percent_done"]) == (1, 4, 25.0)
    assert [s["topic"] for s in web["stuck"]] == ["indexes"]
    assert lee["current_streak"] == 1
    assert lee["last_activity_at"] is not None
    assert response.headers["cache-control"] == "private, no-store"


async def test_learners_may_not_read_the_mentors_view(cohort: dict[str, Browser]) -> None:
    response = await cohort["lee"].client.get("/v1/orgs/cohort-7/progress")

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/role-required"


async def test_a_member_who_opts_out_shows_the_percentage_only(
    cohort: dict[str, Browser],
) -> None:
    lee = cohort["lee"]
    await assign(cohort["mia"])
    opted = await lee.client.put(
        "/v1/orgs/cohort-7/sharing", json={"share_details": False}, headers=lee.write_headers
    )
    await mark(lee, "indexes", "done")
    await mark(lee, "status-codes", "in_progress")

    body = (await cohort["ada"].client.get("/v1/orgs/cohort-7/progress")).json()

    assert opted.json() == {"share_details": False}
    member = next(m for m in body["members"] if m["display_name"] == "Lee")
    assert member["details_shared"] is False
    assert member["current_streak"] is None
    assert member["roadmaps"][0]["percent_done"] == 25.0
    assert member["roadmaps"][0]["stuck"] is None
    assert member["roadmaps"][0]["last_activity_at"] is None
    assert "topic.done" not in await feed_kinds(cohort["kim"])


async def test_learners_see_their_assignments_and_the_whole_organisations(
    cohort: dict[str, Browser],
) -> None:
    lee_id, kim_id = await user_id(cohort["lee"]), await user_id(cohort["kim"])
    await assign(cohort["mia"], section="databases", user_ids=[lee_id])
    await assign(cohort["mia"])

    lee = (await cohort["lee"].client.get("/v1/orgs/cohort-7/assignments")).json()["items"]
    kim = (await cohort["kim"].client.get("/v1/me/assignments")).json()["items"]
    mentor = (await cohort["mia"].client.get("/v1/orgs/cohort-7/assignments")).json()["items"]

    assert [(a["section"], a["assignee_id"]) for a in lee] == [("databases", lee_id), (None, None)]
    assert [(a["org"], a["assignee_id"]) for a in kim] == [("cohort-7", None)]
    assert len(mentor) == 2
    assert kim_id not in {a["assignee_id"] for a in lee}


async def test_learners_may_not_assign(cohort: dict[str, Browser]) -> None:
    lee = cohort["lee"]
    response = await lee.client.post(
        "/v1/orgs/cohort-7/assignments", json={"roadmap": "web"}, headers=lee.write_headers
    )

    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"roadmap": "no-such-roadmap"}, "/problems/roadmap-not-found"),
        ({"roadmap": "web", "section": "nothing"}, "/problems/topic-not-found"),
        ({"roadmap": "web", "user_ids": [999999]}, "/problems/invalid-assignment"),
        ({"roadmap": "web", "due_at": "2000-01-01T00:00:00Z"}, "/problems/invalid-assignment"),
        ({"roadmap": "web", "due_at": "tomorrow"}, "/problems/validation-error"),
    ],
)
async def test_a_bad_assignment_is_refused_and_stores_nothing(
    cohort: dict[str, Browser], body: dict[str, Any], problem: str
) -> None:
    mia = cohort["mia"]
    response = await mia.client.post(
        "/v1/orgs/cohort-7/assignments", json=body, headers=mia.write_headers
    )

    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == problem
    assert (await mia.client.get("/v1/orgs/cohort-7/assignments")).json()["items"] == []


async def test_finishing_an_assigned_section_completes_it_and_the_feed_says_so(
    cohort: dict[str, Browser],
) -> None:
    lee = cohort["lee"]
    lee_id = await user_id(lee)
    (assignment,) = await assign(cohort["mia"], section="databases", user_ids=[lee_id])

    await mark(lee, "indexes", "done")

    mine = (await lee.client.get("/v1/me/assignments")).json()["items"]
    assert [(a["id"], a["completed_by"]) for a in mine] == [(assignment["id"], [lee_id])]
    kinds = await feed_kinds(cohort["kim"])
    assert kinds[:3] == ["assignment.completed", "section.finished", "topic.done"]
    assert "assignment.created" in kinds
    assert "member.joined" in kinds


async def test_a_private_roadmaps_progress_stays_out_of_the_feed(
    cohort: dict[str, Browser],
) -> None:
    lee = cohort["lee"]
    await import_roadmap(lee, {**WEB, "slug": "secret", "title": "Secret"})

    await mark(lee, "indexes", "done", roadmap="secret")

    assert "topic.done" not in await feed_kinds(cohort["kim"])


async def test_the_feed_pages_newest_first_with_cursors(cohort: dict[str, Browser]) -> None:
    for topic in ("status-codes", "etags", "cache-control"):
        await mark(cohort["lee"], topic, "done")

    first = await cohort["kim"].client.get("/v1/orgs/cohort-7/feed", params={"limit": 2})
    second = await cohort["kim"].client.get(first.json()["links"]["next"])

    ids = [i["id"] for i in first.json()["items"]] + [i["id"] for i in second.json()["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids) > 2
    assert 'rel="next"' in first.headers["link"]


async def test_a_forged_feed_cursor_is_a_400(cohort: dict[str, Browser]) -> None:
    response = await cohort["kim"].client.get("/v1/orgs/cohort-7/feed", params={"cursor": "x.y"})

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-cursor"


async def test_outsiders_see_no_feed(cohort: dict[str, Browser], people: People) -> None:
    eve = await people("Eve")

    response = await eve.client.get("/v1/orgs/cohort-7/feed")

    assert response.status_code == 404


async def test_the_reminder_job_reminds_members_who_have_not_finished_once(
    cohort: dict[str, Browser], settings: Settings, database: Database, clock: FrozenClock
) -> None:
    lee_id = await user_id(cohort["lee"])
    due = (clock.now() + timedelta(hours=20)).isoformat()
    await assign(cohort["mia"], user_ids=[lee_id], due_at=due)
    await assign(cohort["mia"], due_at=(clock.now() + timedelta(days=5)).isoformat())
    resources, _queue = make_resources(settings, database, clock)
    job = Job(resources, "tick", 1, 5)

    async with resources.broadcaster.subscribe([user_channel(lee_id)]) as lee_stream:
        await assignment_reminders(job, {"tick": clock.now().isoformat()})
        await assignment_reminders(job, {"tick": clock.now().isoformat()})
        notice = await lee_stream.next(wait_seconds=1)

    reminders = [m for m in await reminders_queued(database) if "is due" in str(m["subject"])]
    assert [m["to"] for m in reminders] == ["lee@example.org"]
    assert "Web" in str(reminders[0]["text"])
    assert notice is not None
    assert notice.message["kind"] == "assignment.reminder"
