"""An organisation made, and people joining it, through the real API."""

from __future__ import annotations

from pathlib import Path

from tests.support.accounts import Browser, last_token


async def create_org(owner: Browser, slug: str = "cohort-7", name: str = "Cohort 7") -> None:
    response = await owner.client.post(
        "/v1/orgs", json={"slug": slug, "name": name}, headers=owner.write_headers
    )
    assert response.status_code == 201, response.text


async def invite_and_join(
    owner: Browser, guest: Browser, outbox: Path, role: str, email: str
) -> None:
    invited = await owner.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": email, "role": role},
        headers=owner.write_headers,
    )
    assert invited.status_code == 201, invited.text
    joined = await guest.client.post(
        "/v1/invitations/accept", json={"token": last_token(outbox)}, headers=guest.write_headers
    )
    assert joined.status_code == 200, joined.text
