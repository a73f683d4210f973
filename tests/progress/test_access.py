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
