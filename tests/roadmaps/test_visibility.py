"""Who sees and changes which roadmap: public, organisation and private, owners and editors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.orgs.test_router import create_org
from tests.support.accounts import Browser, last_token
from tests.support.api_document import request_body_validator

People = Callable[[str], Awaitable[Browser]]
PLAN = b"# Plan\n\n## Basics\n\n- HTTP\n- SQL\n"


async def import_plan(person: Browser, content: bytes = PLAN, **params: str) -> httpx.Response:
    headers = {"content-type": "text/markdown"} | person.write_headers
    return await person.client.post(
        "/v1/roadmaps/import", content=content, headers=headers, params=params
    )


async def slugs_seen_by(client: httpx.AsyncClient) -> list[str]:
    return [item["slug"] for item in (await client.get("/v1/roadmaps")).json()["items"]]


async def test_importing_needs_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/roadmaps/import", content=PLAN, headers={"content-type": "text/markdown"}
    )

    assert response.status_code == 401


async def test_a_users_import_is_private_by_default(
    people: People, client: httpx.AsyncClient
) -> None:
    ada = await people("Ada")
    eve = await people("Eve")

    created = await import_plan(ada)

    assert created.json()["roadmap"] == "plan"
    assert (await ada.client.get("/v1/roadmaps/plan")).json()["visibility"] == "private"
    assert await slugs_seen_by(client) == []
    assert (await client.get("/v1/roadmaps/plan/tree")).status_code == 404
    assert (await eve.client.get("/v1/roadmaps/plan/export")).status_code == 404


async def test_a_public_roadmap_is_seen_by_everyone(
    people: People, client: httpx.AsyncClient
) -> None:
    ada = await people("Ada")

    await import_plan(ada, visibility="public")

    assert await slugs_seen_by(client) == ["plan"]
    assert (await client.get("/v1/roadmaps/plan/topics/http")).status_code == 200


async def test_an_organisation_roadmap_is_seen_by_members_only(
    people: People, client: httpx.AsyncClient, outbox: Path
) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    eve = await people("Eve")
    await ada.client.post(
        "/v1/orgs", json={"slug": "team", "name": "Team"}, headers=ada.write_headers
    )
    await ada.client.post(
        "/v1/orgs/team/invitations",
        json={"email": "bob@example.org", "role": "learner"},
        headers=ada.write_headers,
    )
    await bob.client.post(
        "/v1/invitations/accept", json={"token": last_token(outbox)}, headers=bob.write_headers
    )

    created = await import_plan(ada, visibility="organisation", org="team")

    assert created.status_code == 201
    assert await slugs_seen_by(bob.client) == ["plan"]
    assert await slugs_seen_by(eve.client) == []
    assert await slugs_seen_by(client) == []
    # A learner may read it but not change it.
    assert (await import_plan(bob, PLAN + b"- Caching\n")).status_code == 403


async def test_only_owners_and_mentors_share_with_an_organisation(people: People) -> None:
    ada = await people("Ada")
    eve = await people("Eve")
    await ada.client.post(
        "/v1/orgs", json={"slug": "team", "name": "Team"}, headers=ada.write_headers
    )

    outsider = await import_plan(eve, visibility="organisation", org="team")
    missing_org = await import_plan(ada, visibility="organisation")
    stray_org = await import_plan(ada, org="team")

    assert outsider.status_code == 404
    assert missing_org.status_code == stray_org.status_code == 422


async def test_someone_elses_public_roadmap_cannot_be_reimported(people: People) -> None:
    ada = await people("Ada")
    eve = await people("Eve")
    await import_plan(ada, visibility="public")

    response = await import_plan(eve, PLAN + b"- Vandalism\n")

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/roadmap-not-editable"


async def test_a_private_slug_in_use_only_says_it_is_taken(people: People) -> None:
    ada = await people("Ada")
    eve = await people("Eve")
    await import_plan(ada)

    response = await import_plan(eve)

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/roadmap-slug-taken"
    assert "HTTP" not in response.text


async def test_the_owner_may_make_a_roadmap_public_later(
    people: People, client: httpx.AsyncClient
) -> None:
    ada = await people("Ada")
    await import_plan(ada)

    await import_plan(ada, visibility="public")

    assert await slugs_seen_by(client) == ["plan"]


async def test_an_api_key_needs_the_roadmaps_write_scope_to_import(
    people: People, second_client: httpx.AsyncClient
) -> None:
    ada = await people("Ada")
    keys = {}
    for scope in ("progress:read", "roadmaps:write"):
        created = await ada.client.post(
            "/v1/me/api-keys", json={"name": scope, "scopes": [scope]}, headers=ada.write_headers
        )
        keys[scope] = created.json()["key"]

    def with_key(scope: str) -> dict[str, str]:
        return {"authorization": f"Bearer {keys[scope]}", "content-type": "text/markdown"}

    reader = await second_client.post(
        "/v1/roadmaps/import", content=PLAN, headers=with_key("progress:read")
    )
    writer = await second_client.post(
        "/v1/roadmaps/import", content=PLAN, headers=with_key("roadmaps:write")
    )

    assert reader.status_code == 403
    assert writer.status_code == 201


# The document states the service's rule on "org" and visibility, so a body the document
# accepts is one the service accepts: each case is sent to both.
VISIBILITY_BODIES = [
    pytest.param({"visibility": "organisation"}, False, id="organisation-without-org"),
    pytest.param({"org": "cohort-7"}, False, id="org-with-the-default-visibility"),
    pytest.param({"visibility": "public", "org": "cohort-7"}, False, id="org-with-public"),
    pytest.param({"visibility": "organisation", "org": "cohort-7"}, True, id="organisation"),
    pytest.param({"visibility": "public"}, True, id="public"),
    pytest.param({}, True, id="private-by-default"),
]


@pytest.mark.parametrize(("fields", "accepted"), VISIBILITY_BODIES)
async def test_the_document_and_the_service_agree_on_org_and_visibility_of_a_new_roadmap(
    app: FastAPI, people: People, fields: dict[str, str], accepted: bool
) -> None:
    ada = await people("Ada")
    await create_org(ada)
    body = {"slug": "shared", "title": "Shared", **fields}
    documented = request_body_validator(app, "/v1/roadmaps", "post")

    response = await ada.client.post("/v1/roadmaps", json=body, headers=ada.write_headers)

    assert documented.is_valid(body) is accepted
    assert response.status_code == (201 if accepted else 422), response.text


@pytest.mark.parametrize(("fields", "accepted"), VISIBILITY_BODIES)
async def test_the_document_and_the_service_agree_on_org_and_visibility_of_a_fork(
    app: FastAPI, people: People, fields: dict[str, str], accepted: bool
) -> None:
    ada = await people("Ada")
    await create_org(ada)
    assert (await import_plan(ada, visibility="public")).status_code in (200, 201)
    original = (await slugs_seen_by(ada.client))[0]
    body = {"slug": "my-copy", **fields}
    documented = request_body_validator(app, "/v1/roadmaps/{slug}/forks", "post")

    response = await ada.client.post(
        f"/v1/roadmaps/{original}/forks", json=body, headers=ada.write_headers
    )

    assert documented.is_valid(body) is accepted
    assert response.status_code == (201 if accepted else 422), response.text


async def test_the_document_describes_a_json_import_as_a_roadmap_with_title_and_topics(
    app: FastAPI, people: People
) -> None:
    ada = await people("Ada")
    documented = request_body_validator(app, "/v1/roadmaps/import", "post")

    refused = await ada.client.post("/v1/roadmaps/import", json={}, headers=ada.write_headers)

    assert refused.status_code == 422
    assert not documented.is_valid({})
    assert documented.is_valid({"title": "Plan", "topics": [{"title": "HTTP"}]})
