"""Notification preferences, one-click unsubscribe, and the digest job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.notifications.service import unsubscribe_url
from skilltree.notifications.tasks import DIGEST_SOURCES, DigestSection, weekly_digest
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.mail import read_outbox
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.tasks import Job
from tests.support.accounts import Browser, user_id
from tests.support.background import make_resources

People = Callable[[str], Awaitable[Browser]]


async def test_preferences_default_to_on_and_can_be_changed(people: People) -> None:
    ada = await people("Ada")

    before = await ada.client.get("/v1/me/notifications")
    changed = await ada.client.put(
        "/v1/me/notifications", json={"weekly_digest": False}, headers=ada.write_headers
    )

    assert before.json() == {"weekly_digest": True, "review_reminders": True}
    assert changed.json() == {"weekly_digest": False, "review_reminders": True}


async def test_the_unsubscribe_link_works_without_signing_in(
    people: People, settings: Settings, client: httpx.AsyncClient
) -> None:
    ada = await people("Ada")
    secret = settings.app.secret_key
    url = unsubscribe_url("http://test", secret, await user_id(ada), "weekly_digest")

    anonymous = await client.post(url.removeprefix("http://test"))
    again = await client.post(url.removeprefix("http://test"))

    assert anonymous.json() == {"unsubscribed": "weekly_digest"}
    assert again.status_code == 200  # twice is harmless
    assert (await ada.client.get("/v1/me/notifications")).json()["weekly_digest"] is False


async def test_a_forged_unsubscribe_link_is_a_400_problem(people: People) -> None:
    ada = await people("Ada")

    response = await ada.client.post(
        "/v1/notifications/unsubscribe", params={"token": f"{await user_id(ada)}.weekly_digest.x"}
    )

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-unsubscribe-token"


async def test_account_e_mails_have_a_text_and_an_html_part(people: People, outbox: Path) -> None:
    await people("Ada")

    [verification] = read_outbox(outbox)

    assert verification.get_body(("html",)) is not None
    assert verification.get_body(("plain",)) is not None


def waiting_mail() -> Select[tuple[OutboxMessage]]:
    """E-mail queued and not yet handed on (sign-up e-mails were sent as their requests ended)."""
    return select(OutboxMessage).where(
        OutboxMessage.task_name == "mail.send", OutboxMessage.published_at.is_(None)
    )


@pytest.fixture
def digest_source() -> Iterator[None]:
    async def topics_done(
        session: AsyncSession, user: int, since: datetime, until: datetime
    ) -> DigestSection:
        return DigestSection("Done this week", [f"3 topics (user {user})"])

    DIGEST_SOURCES["test"] = topics_done
    yield
    DIGEST_SOURCES.pop("test")


async def test_the_weekly_digest_goes_to_those_who_want_it(
    people: People,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    digest_source: None,
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await bob.client.put(
        "/v1/me/notifications", json={"weekly_digest": False}, headers=bob.write_headers
    )
    resources, _queue = make_resources(settings, database, clock)

    await weekly_digest(Job(resources, "tick", 1, 5), {"tick": clock.now().isoformat()})

    async with database.unit_of_work() as session:
        queued = (await session.scalars(waiting_mail())).all()
    [digest] = [row.args[0] for row in queued]
    assert digest["to"] == "ada@example.org"
    assert f"3 topics (user {await user_id(ada)})" in digest["text"]
    assert ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"] in digest["headers"]


async def test_no_digest_is_sent_when_there_is_nothing_to_say(
    people: People, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    await people("Ada")
    resources, _queue = make_resources(settings, database, clock)

    await weekly_digest(Job(resources, "tick", 1, 5), {"tick": clock.now().isoformat()})

    async with database.unit_of_work() as session:
        queued = (await session.scalars(waiting_mail())).all()
    assert queued == []
