"""Who sees and changes which roadmap: public, organisation and private, owners and editors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from tests.support.accounts import Browser, last_token

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
