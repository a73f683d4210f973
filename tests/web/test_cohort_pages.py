"""Cohort pages without JavaScript: assignments, the feed, the mentors' view and the study
room, each as plain pages and form posts (what a browser with scripts off sees)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.orgs.test_router import create_org, invite_and_join
from tests.support.accounts import Browser, user_id
from tests.support.progress import WEB, import_roadmap, mark

People = Callable[[str], Awaitable[Browser]]
HTML = {"accept": "text/html"}
ORG = "/orgs/cohort-7"


@pytest.fixture
async def cohort(people: People, outbox: Path) -> dict[str, Browser]:
    """cohort-7: Ada owns it, Lee learns; the public roadmap `web`."""
    ada, lee = await people("Ada"), await people("Lee")
    await create_org(ada)
    await invite_and_join(ada, lee, outbox, "learner", "lee@example.org")
    await import_roadmap(ada, WEB, visibility="public")
    return {"ada": ada, "lee": lee}


async def post(person: Browser, path: str, **form: str) -> tuple[int, str, str]:
    response = await person.client.post(
        path, data={"csrf_token": person.csrf_token, **form}, headers=HTML
    )
    return response.status_code, response.headers.get("location", ""), response.text


async def test_an_owner_assigns_a_roadmap_and_the_learner_sees_it_on_the_dashboard(
    cohort: dict[str, Browser],
) -> None:
    ada, lee = cohort["ada"], cohort["lee"]
    status, location, _ = await post(
        ada, f"{ORG}/assignments", roadmap="web", assignee="everyone", due="2099-01-31"
    )
    assert (status, location) == (303, f"{ORG}?assigned=1#assignments-h")

    dashboard = (await lee.client.get("/", headers=HTML)).text
    assert "Assigned to me" in dashboard
    assert 'href="/roadmaps/web">Web</a>' in dashboard
    assert "due 31 Jan 2099" in dashboard
    org_page = (await ada.client.get(ORG, headers=HTML)).text
    assert "for everyone, due 31 Jan 2099" in org_page
    assert "0 completed" in org_page


async def test_a_bad_assignment_is_explained_on_the_page_and_nothing_is_assigned(
    cohort: dict[str, Browser],
) -> None:
    ada, lee = cohort["ada"], cohort["lee"]
    status, _, page = await post(ada, f"{ORG}/assignments", roadmap="web", due="31/01/2099")
    assert status == 422
    assert "Give the due date as a date" in page
    status, _, page = await post(ada, f"{ORG}/assignments", roadmap="web", due="2001-01-01")
    assert status == 422
    assert "must be in the future" in page
    status, _, page = await post(lee, f"{ORG}/assignments", roadmap="web")
    assert status == 403
    assert (await lee.client.get("/v1/me/assignments")).json()["items"] == []


async def test_an_owner_removes_an_assignment(cohort: dict[str, Browser]) -> None:
    ada = cohort["ada"]
    await post(ada, f"{ORG}/assignments", roadmap="web", assignee=str(await user_id(cohort["lee"])))
    [assignment] = (await ada.client.get("/v1/orgs/cohort-7/assignments")).json()["items"]
    status, location, _ = await post(ada, f"{ORG}/assignments/{assignment['id']}/delete")
    assert (status, location) == (303, f"{ORG}?unassigned=1#assignments-h")
    assert (await ada.client.get("/v1/orgs/cohort-7/assignments")).json()["items"] == []


async def test_the_feed_page_says_who_finished_what(cohort: dict[str, Browser]) -> None:
    await mark(cohort["lee"], "status-codes", "done")
    page = await cohort["lee"].client.get(f"{ORG}/feed", headers=HTML)
    assert page.status_code == 200
    assert "<strong>Lee</strong> finished" in page.text
    assert 'href="/roadmaps/web/topics/status-codes"' in page.text
    assert 'data-stream="/v1/orgs/cohort-7/feed/stream"' in page.text


async def test_the_mentors_view_is_a_table_for_owners_and_mentors_only(
    cohort: dict[str, Browser],
) -> None:
    ada, lee = cohort["ada"], cohort["lee"]
    await post(ada, f"{ORG}/assignments", roadmap="web")
    await mark(lee, "status-codes", "done")
    await mark(lee, "indexes", "in_progress")

    page = await ada.client.get(f"{ORG}/progress", headers=HTML)

    assert page.status_code == 200, page.text
    assert '<th scope="row">Lee' in page.text
    assert 'aria-label="Lee on Web"' in page.text
    assert "1/4 · 25%" in page.text
    assert "In progress longest: <a" in page.text
    refused = await lee.client.get(f"{ORG}/progress", headers=HTML)
    assert refused.status_code == 403


async def test_a_message_is_posted_and_deleted_with_plain_forms(
    cohort: dict[str, Browser],
) -> None:
    ada, lee = cohort["ada"], cohort["lee"]
    status, location, _ = await post(lee, f"{ORG}/rooms/lobby/messages", body="  hello, room  ")
    assert (status, location) == (303, f"{ORG}/rooms/lobby#m-1")
    room = (await ada.client.get(f"{ORG}/rooms/lobby", headers=HTML)).text
    assert '<p class="body">hello, room</p>' in room

    status, _, _ = await post(lee, f"{ORG}/rooms/lobby/messages/1/delete")
    assert status == 403
    status, _, _ = await post(ada, f"{ORG}/rooms/lobby/messages/1/delete")
    assert status == 303
    room = (await lee.client.get(f"{ORG}/rooms/lobby", headers=HTML)).text
    assert "hello, room" not in room
    assert "Message deleted" in room


async def test_an_empty_message_is_refused_and_nothing_is_stored(
    cohort: dict[str, Browser],
) -> None:
    lee = cohort["lee"]
    status, _, page = await post(lee, f"{ORG}/rooms/lobby/messages", body="\u202e\u200b ")
    assert status == 422
    assert "A message needs some visible text." in page
    history = await lee.client.get("/v1/orgs/cohort-7/rooms/lobby/messages")
    assert history.json()["items"] == []


async def test_a_room_of_another_organisation_is_not_found(people: People) -> None:
    stranger = await people("Sam")
    page = await stranger.client.get(f"{ORG}/rooms/lobby", headers=HTML)
    assert page.status_code == 404


async def test_the_profile_form_changes_the_display_name_and_refuses_control_characters(
    people: People,
) -> None:
    ada = await people("Ada")
    form = {"handle": "", "time_zone": "UTC"}
    status, location, _ = await post(ada, "/account/profile", display_name="Ada L.", **form)
    assert (status, location) == (303, "/account?profile=1#profile-h")
    account = (await ada.client.get("/account", headers=HTML)).text
    assert 'class="who">Ada L.</a>' in account

    status, _, page = await post(ada, "/account/profile", display_name="Ada\u202eX", **form)
    assert status == 422
    assert "must not contain control, format or line-break characters" in page
    assert 'value="Ada\u202eX"' in page  # what was typed, to correct
    assert (await ada.client.get("/v1/me")).json()["display_name"] == "Ada L."
