"""Organisations: roles decide what members may do; outsiders cannot even see them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from skilltree.platform.mail import read_outbox
from skilltree.platform.queue.models import OutboxMessage
from tests.support.accounts import Browser, last_token, sign_in, user_id
from tests.support.orgs import create_org, invite_and_join

People = Callable[[str], Awaitable[Browser]]


async def test_the_creator_owns_the_organisation(people: People) -> None:
    ada = await people("Ada")

    await create_org(ada)

    orgs = (await ada.client.get("/v1/orgs")).json()["items"]
    assert [(o["slug"], o["role"]) for o in orgs] == [("cohort-7", "owner")]


async def test_a_taken_slug_is_a_conflict(people: People) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)

    response = await bob.client.post(
        "/v1/orgs", json={"slug": "cohort-7", "name": "Mine"}, headers=bob.write_headers
    )

    assert response.status_code == 409


async def test_outsiders_get_404_for_an_organisation_that_exists(people: People) -> None:
    ada = await people("Ada")
    eve = await people("Eve")
    await create_org(ada)

    existing = await eve.client.get("/v1/orgs/cohort-7/members")
    missing = await eve.client.get("/v1/orgs/no-such-org/members")

    assert existing.status_code == missing.status_code == 404
    assert existing.json()["type"] == missing.json()["type"] == "/problems/org-not-found"


async def test_an_invited_learner_joins_with_the_invited_role(people: People, outbox: Path) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)

    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    members = (await ada.client.get("/v1/orgs/cohort-7/members")).json()["items"]
    assert sorted((m["display_name"], m["role"]) for m in members) == [
        ("Ada", "owner"),
        ("Bob", "learner"),
    ]


async def test_the_invitation_e_mail_is_stored_with_the_invitation_then_sent(
    people: People, outbox: Path, database: Database
) -> None:
    ada = await people("Ada")
    await create_org(ada)

    invited = await ada.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "bob@example.org", "role": "learner"},
        headers=ada.write_headers,
    )

    assert invited.status_code == 201
    mail = select(OutboxMessage).where(OutboxMessage.task_name == "mail.send")
    async with database.unit_of_work() as session:
        rows = (await session.scalars(mail)).all()
    stored = [row for row in rows if row.args[0]["to"] == "bob@example.org"]
    # Committed with the invitation, so it cannot be lost between the commit and sending.
    assert [row.published_at is not None for row in stored] == [True]
    assert read_outbox(outbox)[-1]["To"] == "bob@example.org"


async def test_an_invitation_only_works_for_the_invited_address(
    people: People, outbox: Path
) -> None:
    ada = await people("Ada")
    eve = await people("Eve")
    await create_org(ada)
    await ada.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "bob@example.org", "role": "mentor"},
        headers=ada.write_headers,
    )

    stolen = await eve.client.post(
        "/v1/invitations/accept", json={"token": last_token(outbox)}, headers=eve.write_headers
    )

    assert stolen.status_code == 400
    assert (await eve.client.get("/v1/orgs/cohort-7")).status_code == 404


async def test_an_invitation_expires_after_seven_days(
    people: People, outbox: Path, clock: FrozenClock
) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await ada.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "bob@example.org", "role": "learner"},
        headers=ada.write_headers,
    )
    token = last_token(outbox)
    clock.advance(days=7)
    bob = await sign_in(bob.client, email="bob@example.org")  # the old session has ended

    response = await bob.client.post(
        "/v1/invitations/accept", json={"token": token}, headers=bob.write_headers
    )

    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/invalid-invitation"
    assert (await bob.client.get("/v1/orgs")).json()["items"] == []


async def test_an_invitation_is_still_valid_just_before_seven_days(
    people: People, outbox: Path, clock: FrozenClock
) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await ada.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "bob@example.org", "role": "learner"},
        headers=ada.write_headers,
    )
    token = last_token(outbox)
    clock.advance(days=7, seconds=-60)
    bob = await sign_in(bob.client, email="bob@example.org")

    response = await bob.client.post(
        "/v1/invitations/accept", json={"token": token}, headers=bob.write_headers
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("action", "method", "path", "body"),
    [
        ("rename", "PATCH", "/v1/orgs/cohort-7", {"name": "Renamed"}),
        ("delete", "DELETE", "/v1/orgs/cohort-7", None),
        (
            "invite a mentor",
            "POST",
            "/v1/orgs/cohort-7/invitations",
            {"email": "x@example.org", "role": "mentor"},
        ),
    ],
)
async def test_a_learner_may_not_manage_the_organisation(
    people: People, outbox: Path, action: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    response = await bob.client.request(method, path, json=body, headers=bob.write_headers)

    assert response.status_code == 403, action
    assert response.json()["type"] == "/problems/role-required"


async def test_a_mentor_may_invite_learners_but_not_mentors(people: People, outbox: Path) -> None:
    ada = await people("Ada")
    max_ = await people("Max")
    await create_org(ada)
    await invite_and_join(ada, max_, outbox, "mentor", "max@example.org")

    learner = await max_.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "l@example.org", "role": "learner"},
        headers=max_.write_headers,
    )
    mentor = await max_.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "m@example.org", "role": "mentor"},
        headers=max_.write_headers,
    )

    assert learner.status_code == 201
    assert mentor.status_code == 403


async def test_the_last_owner_can_neither_leave_nor_step_down(people: People) -> None:
    ada = await people("Ada")
    await create_org(ada)
    ada_id = await user_id(ada)

    leave = await ada.client.delete(
        f"/v1/orgs/cohort-7/members/{ada_id}", headers=ada.write_headers
    )
    demote = await ada.client.put(
        f"/v1/orgs/cohort-7/members/{ada_id}/role",
        json={"role": "learner"},
        headers=ada.write_headers,
    )

    assert leave.status_code == demote.status_code == 409


async def test_ownership_can_be_transferred(people: People, outbox: Path) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    response = await ada.client.post(
        "/v1/orgs/cohort-7/transfer-ownership",
        json={"user_id": await user_id(bob)},
        headers=ada.write_headers,
    )

    assert response.status_code == 204
    assert (await bob.client.get("/v1/orgs/cohort-7")).json()["role"] == "owner"
    assert (await ada.client.get("/v1/orgs/cohort-7")).json()["role"] == "mentor"


async def test_a_learner_may_leave(people: People, outbox: Path) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    response = await bob.client.delete(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}", headers=bob.write_headers
    )

    assert response.status_code == 204
    assert (await bob.client.get("/v1/orgs/cohort-7")).status_code == 404


async def test_role_changes_are_audited(people: People, outbox: Path) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    await ada.client.put(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}/role",
        json={"role": "mentor"},
        headers=ada.write_headers,
    )

    kinds = [e["kind"] for e in (await bob.client.get("/v1/me/security-events")).json()["items"]]
    assert kinds[:2] == ["org.role_changed", "org.invitation_accepted"]


async def test_owners_read_the_organisation_audit_log_and_others_may_not(
    people: People, outbox: Path
) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")
    await ada.client.put(
        f"/v1/orgs/cohort-7/members/{await user_id(bob)}/role",
        json={"role": "mentor"},
        headers=ada.write_headers,
    )

    owner_view = await ada.client.get("/v1/orgs/cohort-7/audit")
    mentor_view = await bob.client.get("/v1/orgs/cohort-7/audit")

    assert [e["kind"] for e in owner_view.json()["items"]] == [
        "org.role_changed",
        "org.invitation_accepted",
    ]
    assert mentor_view.status_code == 403


@pytest.mark.parametrize("name", ["Cohort\r\nBcc: all@example.org", "Tab\there", "Bell\x07"])
async def test_an_organisation_name_with_control_characters_is_a_422(
    people: People, name: str
) -> None:
    ada = await people("Ada")

    created = await ada.client.post(
        "/v1/orgs", json={"slug": "cohort-8", "name": name}, headers=ada.write_headers
    )
    await create_org(ada)
    renamed = await ada.client.patch(
        "/v1/orgs/cohort-7", json={"name": name}, headers=ada.write_headers
    )

    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["field"] == "body.name"
    assert renamed.status_code == 422, renamed.text
    assert (await ada.client.get("/v1/orgs/cohort-7")).json()["name"] == "Cohort 7"


async def test_an_organisation_with_an_audit_trail_can_be_deleted_and_the_trail_stays(
    people: People, outbox: Path
) -> None:
    ada = await people("Ada")
    bob = await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    deleted = await ada.client.delete("/v1/orgs/cohort-7", headers=ada.write_headers)

    assert deleted.status_code == 204, deleted.text
    assert (await ada.client.get("/v1/orgs/cohort-7")).status_code == 404
    # The append-only log keeps what happened; only its link to the organisation is cleared.
    kinds = [e["kind"] for e in (await bob.client.get("/v1/me/security-events")).json()["items"]]
    assert "org.invitation_accepted" in kinds
