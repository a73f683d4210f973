"""Organisations emit domain events through the outbox, in the transaction of the change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from skilltree.platform.db import Database
from skilltree.platform.events import DELIVER_TASK
from skilltree.platform.queue.models import OutboxMessage
from tests.orgs.test_router import create_org, invite_and_join
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


async def emitted(database: Database) -> list[tuple[str, dict[str, object]]]:
    events = select(OutboxMessage).where(OutboxMessage.task_name == DELIVER_TASK)
    async with database.unit_of_work() as session:
        rows = (await session.scalars(events.order_by(OutboxMessage.id))).all()
    return [(row.args[0]["type"], row.args[0]["data"]) for row in rows]


async def test_inviting_and_joining_emit_events(
    people: People, outbox: Path, database: Database
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await create_org(ada)

    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")

    bob_id = (await bob.client.get("/v1/me")).json()["id"]
    assert await emitted(database) == [
        ("invitation.created", {"org": "cohort-7", "email": "bob@example.org", "role": "learner"}),
        ("member.joined", {"org": "cohort-7", "user_id": bob_id, "role": "learner"}),
    ]


async def test_a_refused_change_emits_nothing(
    people: People, outbox: Path, database: Database
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")
    before = await emitted(database)

    refused = await bob.client.post(
        "/v1/orgs/cohort-7/invitations",
        json={"email": "eve@example.org", "role": "owner"},
        headers=bob.write_headers,
    )

    assert refused.status_code == 403
    assert await emitted(database) == before
