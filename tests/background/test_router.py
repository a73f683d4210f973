"""The administrators' dead-letter API: list, show, replay, delete and purge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, update

from skilltree.accounts.models import User
from skilltree.platform.clock import FrozenClock
from skilltree.platform.db import Database
from skilltree.platform.queue import dead_letters
from skilltree.platform.queue.models import OutboxMessage
from tests.support.accounts import Browser

People = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def root(people: People, database: Database) -> Browser:
    person = await people("Root")
    me = (await person.client.get("/v1/me")).json()["id"]
    async with database.unit_of_work() as session:
        await session.execute(update(User).where(User.id == me).values(is_admin=True))
    return person


async def bury(database: Database, clock: FrozenClock, task: str, to: str) -> None:
    async with database.unit_of_work() as session:
        dead_letters.record(
            session,
            task_id=f"id-{to}",
            task_name=task,
            args=[{"to": to}],
            labels={"attempt": 8},
            attempts=8,
            error=RuntimeError("550 no such mailbox"),
            now=clock.now(),
        )


async def test_administrators_list_and_show_dead_letters(
    root: Browser, database: Database, clock: FrozenClock
) -> None:
    await bury(database, clock, "mail.send", "a@example.org")
    await bury(database, clock, "events.deliver", "b@example.org")

    listed = (await root.client.get("/v1/admin/dlq", params={"task": "mail.send"})).json()
    [item] = listed["items"]
    shown = await root.client.get(f"/v1/admin/dlq/{item['id']}")

    assert listed["total"] == 1
    assert shown.status_code == 200
    assert shown.json()["payload"] == {"to": "a@example.org"}
    assert shown.json()["attempts"] == 8
    assert shown.json()["error"] == "RuntimeError: 550 no such mailbox"


async def test_replaying_queues_the_task_again_and_removes_the_letter(
    root: Browser, database: Database, clock: FrozenClock
) -> None:
    await bury(database, clock, "mail.send", "a@example.org")
    [item] = (await root.client.get("/v1/admin/dlq")).json()["items"]

    replayed = await root.client.post(
        f"/v1/admin/dlq/{item['id']}/replay", headers=root.write_headers
    )

    assert replayed.status_code == 202
    async with database.unit_of_work() as session:
        # The one row still to publish (the sign-up e-mail was sent).
        waiting = select(OutboxMessage).where(OutboxMessage.published_at.is_(None))
        queued = (await session.scalars(waiting)).one()
    assert queued.message_id == replayed.json()["message_id"]
    assert (queued.task_name, queued.args, queued.labels) == (
        "mail.send",
        [{"to": "a@example.org"}],
        {"attempt": 1},
    )
    assert (await root.client.get(f"/v1/admin/dlq/{item['id']}")).status_code == 404


async def test_deleting_and_purging_drop_letters(
    root: Browser, database: Database, clock: FrozenClock
) -> None:
    for to in ("a@example.org", "b@example.org", "c@example.org"):
        await bury(database, clock, "mail.send", to)
    first = (await root.client.get("/v1/admin/dlq")).json()["items"][0]["id"]

    deleted = await root.client.delete(f"/v1/admin/dlq/{first}", headers=root.write_headers)
    purged = await root.client.delete("/v1/admin/dlq", headers=root.write_headers)

    assert deleted.status_code == 204
    assert purged.json() == {"purged": 2}
    assert (await root.client.get("/v1/admin/dlq")).json()["total"] == 0


async def test_an_unknown_letter_is_a_404_problem(root: Browser) -> None:
    response = await root.client.post("/v1/admin/dlq/999/replay", headers=root.write_headers)

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/dead-letter-not-found"


async def test_a_bad_page_size_is_a_422_problem(root: Browser) -> None:
    response = await root.client.get("/v1/admin/dlq", params={"limit": 0})

    assert response.status_code == 422


async def test_people_who_are_not_administrators_are_refused(people: People) -> None:
    ada = await people("Ada")

    response = await ada.client.get("/v1/admin/dlq")

    assert response.status_code == 403
    assert response.json()["type"] == "/problems/not-platform-admin"
