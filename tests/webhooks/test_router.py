"""The webhooks API as an organisation owner uses it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from skilltree.platform.db import Database
from skilltree.platform.queue.models import OutboxMessage
from tests.orgs.test_router import create_org, invite_and_join
from tests.support.accounts import Browser
from tests.support.api_document import request_body_validator

People = Callable[[str], Awaitable[Browser]]
HOOK = {"url": "https://8.8.8.8/hooks/skilltree", "event_types": ["member.joined"]}


async def test_an_owner_registers_an_endpoint_and_sees_its_secret_once(
    people: People,
) -> None:
    ada = await people("Ada")
    await create_org(ada)

    created = await ada.client.post(
        "/v1/orgs/cohort-7/webhooks", json=HOOK, headers=ada.write_headers
    )
    listed = await ada.client.get("/v1/orgs/cohort-7/webhooks")

    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    [endpoint] = listed.json()["items"]
    assert endpoint["url"] == HOOK["url"]
    assert "secret" not in endpoint


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/hook",
        "http://8.8.8.8/hook",
    ],
)
async def test_urls_the_guard_refuses_are_a_422_problem(people: People, url: str) -> None:
    ada = await people("Ada")
    await create_org(ada)

    response = await ada.client.post(
        "/v1/orgs/cohort-7/webhooks",
        json={"url": url, "event_types": ["*"]},
        headers=ada.write_headers,
    )

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/webhook-destination-forbidden"


async def test_a_bad_event_type_is_a_422_problem(people: People) -> None:
    ada = await people("Ada")
    await create_org(ada)

    response = await ada.client.post(
        "/v1/orgs/cohort-7/webhooks",
        json={"url": HOOK["url"], "event_types": ["Robert'); DROP TABLE"]},
        headers=ada.write_headers,
    )

    assert response.status_code == 422


async def test_members_who_are_not_owners_cannot_see_endpoints(
    people: People, outbox: Path
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "mentor", "bob@example.org")

    response = await bob.client.get("/v1/orgs/cohort-7/webhooks")

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/role-required"


async def test_the_test_event_is_queued_and_shows_in_the_delivery_log(
    people: People, database: Database
) -> None:
    ada = await people("Ada")
    await create_org(ada)
    endpoint = (
        await ada.client.post("/v1/orgs/cohort-7/webhooks", json=HOOK, headers=ada.write_headers)
    ).json()

    queued = await ada.client.post(
        f"/v1/orgs/cohort-7/webhooks/{endpoint['id']}/test", headers=ada.write_headers
    )
    log = await ada.client.get(f"/v1/orgs/cohort-7/webhooks/{endpoint['id']}/deliveries")
    redelivered = await ada.client.post(
        f"/v1/orgs/cohort-7/webhooks/{endpoint['id']}/deliveries/"
        f"{queued.json()['delivery_id']}/redeliver",
        headers=ada.write_headers,
    )

    assert queued.status_code == 202
    [delivery] = log.json()["items"]
    assert (delivery["event_type"], delivery["status"]) == ("webhook.test", "pending")
    assert redelivered.status_code == 202
    async with database.unit_of_work() as session:
        tasks = (
            await session.scalars(
                select(OutboxMessage.task_name).where(OutboxMessage.task_name == "webhooks.deliver")
            )
        ).all()
    assert len(tasks) == 2


async def test_an_endpoint_of_another_organisation_is_not_found(people: People) -> None:
    ada, eve = await people("Ada"), await people("Eve")
    await create_org(ada)
    await create_org(eve, slug="evil-corp", name="Evil")
    endpoint = (
        await ada.client.post("/v1/orgs/cohort-7/webhooks", json=HOOK, headers=ada.write_headers)
    ).json()

    response = await eve.client.delete(
        f"/v1/orgs/evil-corp/webhooks/{endpoint['id']}", headers=eve.write_headers
    )

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/webhook-endpoint-not-found"


@pytest.mark.parametrize(
    ("url", "accepted"),
    [("https://8.8.8.8/hook", True), ("http://8.8.8.8/hook", False), ("00000000", False)],
)
async def test_the_document_refuses_the_urls_the_guard_refuses_for_their_form(
    app: FastAPI, people: People, url: str, accepted: bool
) -> None:
    ada = await people("Ada")
    await create_org(ada)
    body = {"url": url, "event_types": ["*"]}
    documented = request_body_validator(app, "/v1/orgs/{org}/webhooks", "post")

    response = await ada.client.post(
        "/v1/orgs/cohort-7/webhooks", json=body, headers=ada.write_headers
    )

    assert documented.is_valid(body) is accepted
    assert response.status_code == (201 if accepted else 422), response.text
