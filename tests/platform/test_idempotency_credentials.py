"""Idempotency-Key replays belong to the credential that made the request, and never skip the
route's own checks: every route that takes the header, with every kind of credential."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from skilltree.platform.clock import FrozenClock
from skilltree.platform.http.idempotency import idempotent_routes
from tests.orgs.test_router import create_org, invite_and_join
from tests.support.accounts import Browser, bearer_headers
from tests.support.progress import WEB, import_roadmap, mark

People = Callable[[str], Awaitable[Browser]]
Body = Callable[[str], dict[str, Any] | None]
Before = Callable[[Browser, str], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    path: str  # as the app serves it
    route: str  # as the app declares it
    body: Body  # a valid body, different for each tag (each first request)
    # The API key scope the route needs; None: API keys may not use the route at all.
    scope: str | None
    # What must happen before each first request (a revision needs a change to publish).
    before: Before | None = None


async def _change_the_roadmap(person: Browser, tag: str) -> None:
    response = await person.client.post(
        "/v1/roadmaps/web/topics", json={"title": f"New {tag}"}, headers=person.write_headers
    )
    assert response.status_code == 201, response.text


def _topic(tag: str) -> dict[str, Any]:
    return {"title": f"Topic {tag}"}


CASES = [
    Case(
        "/v1/roadmaps", "/v1/roadmaps", lambda t: {"slug": f"r-{t}", "title": t}, "roadmaps:write"
    ),
    Case(
        "/v1/roadmaps/web/forks",
        "/v1/roadmaps/{slug}/forks",
        lambda t: {"slug": f"fork-{t}"},
        "roadmaps:write",
    ),
    Case("/v1/roadmaps/web/topics", "/v1/roadmaps/{slug}/topics", _topic, "roadmaps:write"),
    Case(
        "/v1/roadmaps/web/revisions",
        "/v1/roadmaps/{slug}/revisions",
        lambda t: {"note": f"revision {t}"},
        "roadmaps:write",
        before=_change_the_roadmap,
    ),
    Case(
        "/v1/roadmaps/import",
        "/v1/roadmaps/import",
        lambda t: {"slug": f"imported-{t}", "title": t, "topics": [{"slug": "a", "title": "A"}]},
        "roadmaps:write",
    ),
    Case(
        "/v1/me/progress/web/etags/resources",
        "/v1/me/progress/{roadmap}/{topic}/resources",
        lambda t: {"title": t, "url": f"https://example.org/{t}"},
        "progress:write",
    ),
    Case(
        "/v1/me/progress/web/undo",
        "/v1/me/progress/{roadmap}/undo",
        lambda t: None,
        "progress:write",
    ),
    Case(
        "/v1/me/reviews/{card}",
        "/v1/me/reviews/{card_id}",
        lambda t: {"rating": "good"},
        "progress:write",
    ),
    Case("/v1/orgs", "/v1/orgs", lambda t: {"slug": f"org-{t}", "name": t}, None),
    Case(
        "/v1/orgs/cohort-7/invitations",
        "/v1/orgs/{org}/invitations",
        lambda t: {"email": f"{t}@example.org", "role": "learner"},
        None,
    ),
    Case(
        "/v1/orgs/cohort-7/webhooks",
        "/v1/orgs/{org}/webhooks",
        lambda t: {"url": f"https://8.8.8.8/hooks/{t}", "event_types": ["member.joined"]},
        None,
    ),
    Case(
        "/v1/orgs/cohort-7/assignments",
        "/v1/orgs/{org}/assignments",
        lambda t: {
            "roadmap": "web",
            "due_at": f"2027-01-{1 + sum(map(ord, t)) % 28:02d}T12:00:00Z",
        },
        None,
    ),
    Case(
        "/v1/me/api-keys",
        "/v1/me/api-keys",
        lambda t: {"name": t, "scopes": ["progress:read"]},
        None,
    ),
    # A GraphQL mutation: each undo takes back another change (the event id tells them apart).
    Case("/graphql", "/graphql", lambda t: _undo_document(t), "progress:write"),
]


def _undo_document(tag: str) -> dict[str, Any]:
    name = tag.replace("-", "_")
    return {"query": f'mutation Undo_{name} {{ undo(roadmap: "web") {{ undoneEventId topic }} }}'}


async def _api_key(person: Browser, scope: str) -> dict[str, str]:
    response = await person.client.post(
        "/v1/me/api-keys", json={"name": scope, "scopes": [scope]}, headers=person.write_headers
    )
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['key']}"}


async def _prepare(person: Browser) -> dict[str, str]:
    """Everything the routes act on: a roadmap (public, so an organisation may be assigned
    it), a review card, changes to undo, an org."""
    await import_roadmap(person, WEB, visibility="public")
    for status in ["in_progress", "skipped", "in_progress", "skipped"] * 3 + ["done"]:
        assert (await mark(person, "etags", status)).status_code == 200
    due = await person.client.get("/v1/me/reviews/due")
    (card,) = due.json()["items"]
    await create_org(person)
    return {"card": str(card["id"])}


def test_the_cases_cover_every_route_that_takes_an_idempotency_key(app: FastAPI) -> None:
    declared = {route.path_format for route in idempotent_routes(app.routes)}

    assert {case.route for case in CASES} == declared


@pytest.mark.parametrize("case", CASES, ids=[case.route for case in CASES])
async def test_a_replay_goes_only_to_the_credential_that_made_the_request(
    people: People, case: Case, clock: FrozenClock
) -> None:
    ada = await people("Ada")
    path = case.path.format(**await _prepare(ada))
    other_scope = "progress:read"
    credentials: dict[str, dict[str, str]] = {
        "session": ada.write_headers,
        "bearer": await bearer_headers(ada),
        "key without the scope": await _api_key(ada, other_scope),
    }
    if case.scope is not None:
        credentials["key with the scope"] = await _api_key(ada, case.scope)
    refused = {"key without the scope"}

    async def post(credential: str, key: str, tag: str) -> httpx.Response:
        clock.advance(seconds=1)  # so that no two runs answer with the same timestamps
        headers = credentials[credential] | {"idempotency-key": key}
        body = case.body(tag)
        return await ada.client.post(path, json=body, headers=headers)

    for owner in [name for name in credentials if name not in refused]:
        key = f"key-of-{owner.replace(' ', '-')}"
        tag = owner.replace(" ", "-")
        if case.before is not None:
            await case.before(ada, tag)
        first = await post(owner, key, tag)
        assert 200 <= first.status_code < 300, (owner, first.text)
        assert "idempotency-replayed" not in first.headers

        for other in [name for name in credentials if name != owner]:
            response = await post(other, key, tag)
            assert "idempotency-replayed" not in response.headers, (owner, other)
            assert response.content != first.content, (owner, other)
            if other in refused:
                assert response.status_code == 403, (owner, other, response.text)

        retry = await post(owner, key, tag)
        assert retry.headers.get("idempotency-replayed") == "true", (owner, retry.text)
        assert retry.content == first.content


async def test_a_replay_runs_the_routes_role_checks_first(people: People, outbox: Path) -> None:
    """A mentor who invited someone, then lost the role, cannot replay the invitation."""
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "mentor", "bob@example.org")
    headers = bob.write_headers | {"idempotency-key": "invite-1"}
    body = {"email": "cy@example.org", "role": "learner"}
    first = await bob.client.post("/v1/orgs/cohort-7/invitations", json=body, headers=headers)
    bob_id = (await bob.client.get("/v1/me")).json()["id"]
    demoted = await ada.client.put(
        f"/v1/orgs/cohort-7/members/{bob_id}/role",
        json={"role": "learner"},
        headers=ada.write_headers,
    )

    retry = await bob.client.post("/v1/orgs/cohort-7/invitations", json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert demoted.status_code == 204, demoted.text
    assert retry.status_code == 403, retry.text
    assert "idempotency-replayed" not in retry.headers


async def test_a_replay_to_a_removed_member_is_refused(people: People, outbox: Path) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "owner", "bob@example.org")
    headers = bob.write_headers | {"idempotency-key": "hook-1"}
    body = {"url": "https://8.8.8.8/hooks/x", "event_types": ["member.joined"]}
    first = await bob.client.post("/v1/orgs/cohort-7/webhooks", json=body, headers=headers)
    bob_id = (await bob.client.get("/v1/me")).json()["id"]
    removed = await ada.client.delete(
        f"/v1/orgs/cohort-7/members/{bob_id}", headers=ada.write_headers
    )

    retry = await bob.client.post("/v1/orgs/cohort-7/webhooks", json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert removed.status_code == 204, removed.text
    assert retry.status_code == 404, retry.text
    assert "whsec_" not in retry.text
