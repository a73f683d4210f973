"""Whether a learner may see a roadmap is decided on every progress read, also when the body
comes from the cache: leaving an organisation ends access to its roadmaps at the next request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.accounts import Browser, bearer_headers, last_token, user_id
from tests.support.progress import WEB, People, mark

PROGRESS = "/v1/me/progress/web"


async def organisation_with_a_roadmap(owner: Browser, member: Browser, outbox: Path) -> None:
    """`team`, with `member` as a learner and the WEB roadmap shared with its members."""
    created = await owner.client.post(
        "/v1/orgs", json={"slug": "team", "name": "Team"}, headers=owner.write_headers
    )
    assert created.status_code == 201, created.text
    await owner.client.post(
        "/v1/orgs/team/invitations",
        json={"email": "bob@example.org", "role": "learner"},
        headers=owner.write_headers,
    )
    joined = await member.client.post(
        "/v1/invitations/accept", json={"token": last_token(outbox)}, headers=member.write_headers
    )
    assert joined.status_code == 200, joined.text
    shared = await owner.client.post(
        "/v1/roadmaps/import",
        json=WEB,
        params={"visibility": "organisation", "org": "team"},
        headers=owner.write_headers,
    )
    assert shared.status_code == 201, shared.text


@pytest.mark.parametrize("credential", ["cookie", "bearer"])
async def test_a_member_removed_from_the_organisation_loses_its_roadmap_at_once(
    people: People, outbox: Path, credential: str
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await organisation_with_a_roadmap(ada, bob, outbox)
    headers = await bearer_headers(bob) if credential == "bearer" else {}
    await mark(bob, "indexes", "done")
    for view in (PROGRESS, f"{PROGRESS}/summary"):
        assert (await bob.client.get(view, headers=headers)).status_code == 200  # now cached

    removed = await ada.client.delete(
        f"/v1/orgs/team/members/{await user_id(bob)}", headers=ada.write_headers
    )

    assert removed.status_code == 204
    for view in (PROGRESS, f"{PROGRESS}/summary"):
        assert (await bob.client.get(view, headers=headers)).status_code == 404


async def test_a_roadmap_made_under_the_slug_of_a_deleted_organisations_roadmap_starts_afresh(
    people: People, outbox: Path
) -> None:
    # Deleting the organisation deletes its roadmaps (and the progress on them) in the
    # database alone; a new roadmap may then take the slug, and what was cached under it
    # must not be served for the new one.
    ada, bob = await people("Ada"), await people("Bob")
    await organisation_with_a_roadmap(ada, bob, outbox)
    await mark(bob, "indexes", "done")
    assert (await bob.client.get(PROGRESS)).json()["summary"]["counts"]["done"] == 1  # cached

    deleted = await ada.client.delete("/v1/orgs/team", headers=ada.write_headers)
    created = await ada.client.post(
        "/v1/roadmaps",
        json={"slug": "web", "title": "Web, again", "visibility": "public"},
        headers=ada.write_headers,
    )
    progress = await bob.client.get(PROGRESS)

    assert deleted.status_code == 204, deleted.text
    assert created.status_code == 201, created.text
    assert progress.status_code == 200, progress.text
    assert progress.json()["summary"]["counts"]["done"] == 0
    assert progress.json()["topics"] == []
