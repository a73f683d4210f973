"""Organisation roles from the organisation page's forms: promote, demote, remove, leave, and
the last owner kept (the rules of orgs.service, as the API applies them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.accounts import Browser, last_token

HTML = {"accept": "text/html"}


async def team(owner: Browser, member: Browser, outbox: Path) -> int:
    """`team` with `member` as a learner; returns the member's user id."""
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
    return int((await member.client.get("/v1/me")).json()["id"])


async def roles(owner: Browser) -> dict[str, str]:
    listed = await owner.client.get("/v1/orgs/team/members")
    return {m["display_name"]: m["role"] for m in listed.json()["items"]}


async def test_an_owner_promotes_demotes_and_removes_a_member_from_the_page(
    people: Callable[[str], Awaitable[Browser]], outbox: Path
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    bob_id = await team(ada, bob, outbox)
    page = await ada.client.get("/orgs/team", headers=HTML)
    assert 'aria-label="Role of Bob"' in page.text

    form = {"csrf_token": ada.csrf_token, "role": "mentor"}
    changed = await ada.client.post(f"/orgs/team/members/{bob_id}/role", data=form, headers=HTML)
    assert changed.status_code == 303
    assert (await roles(ada))["Bob"] == "mentor"

    ada_id = int((await ada.client.get("/v1/me")).json()["id"])
    last = await ada.client.post(
        f"/orgs/team/members/{ada_id}/remove", data={"csrf_token": ada.csrf_token}, headers=HTML
    )
    assert last.status_code == 409
    assert "would be left without an owner" in last.text

    # A mentor may not change roles: the page says why, nothing changes.
    refused = await bob.client.post(
        f"/orgs/team/members/{bob_id}/role",
        data={"csrf_token": bob.csrf_token, "role": "owner"},
        headers=HTML,
    )
    assert refused.status_code == 403
    assert (await roles(ada))["Bob"] == "mentor"
    assert 'aria-label="Role of' not in (await bob.client.get("/orgs/team", headers=HTML)).text

    removed = await ada.client.post(
        f"/orgs/team/members/{bob_id}/remove", data={"csrf_token": ada.csrf_token}, headers=HTML
    )
    assert removed.status_code == 303
    assert "Bob" not in await roles(ada)
    assert (await bob.client.get("/orgs/team", headers=HTML)).status_code == 404
