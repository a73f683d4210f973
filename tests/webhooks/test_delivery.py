"""Deliveries to a real HTTP receiver on loopback: signed, logged, retried, broken off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from skilltree.accounts.models import User
from skilltree.identity import Credential, Principal
from skilltree.orgs.models import Membership, Organisation
from skilltree.orgs.service import Member, OrgView, Role
from skilltree.platform.clock import FrozenClock
from skilltree.platform.config import (
    AppSettings,
    DatabaseSettings,
    MailSettings,
    Settings,
    WebhookSettings,
)
from skilltree.platform.crypto import secret_box
from skilltree.platform.db import Database
from skilltree.platform.events import Event
from skilltree.platform.queue.models import OutboxMessage
from skilltree.platform.queue.retry import PermanentFailure
from skilltree.platform.queue.tasks import Job
from skilltree.webhooks import service
from skilltree.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from skilltree.webhooks.service import WebhookContext
from skilltree.webhooks.tasks import DeliveryFailed, deliver
from tests.support.background import empty_background_tables, make_resources
from tests.webhooks.receiver import Receiver, running_receiver


@dataclass
class World:
    database: Database
    settings: Settings
    clock: FrozenClock
    member: Member

    def context(self) -> WebhookContext:
        app = self.settings.app
        return WebhookContext(self.clock, self.settings.webhooks, secret_box(app.secret_key, ()))

    def job(self, attempt: int = 1) -> Job:
        resources, _queue = make_resources(self.settings, self.database, self.clock)
        return Job(resources, "task", attempt, 8)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
async def world(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[World]:
    """An owner and an organisation, committed (deliveries run in their own transactions)."""
    database = Database(engine)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    await empty_background_tables(engine)
    async with database.unit_of_work() as session:
        user = User(
            email="owner@example.org",
            display_name="Owner",
            password_hash="x",
            created_at=clock.now(),
            email_verified_at=clock.now(),
            password_changed_at=clock.now(),
        )
        org = Organisation(slug="hooked", name="Hooked", created_at=clock.now())
        session.add_all([user, org])
        await session.flush()
        membership = Membership(org_id=org.id, user_id=user.id, role="owner", joined_at=clock.now())
        session.add(membership)
    settings = Settings(
        app=AppSettings(env="test"),
        database=DatabaseSettings(url=engine.url.render_as_string(hide_password=False)),
        mail=MailSettings(outbox_dir=tmp_path / "outbox"),
        webhooks=WebhookSettings(
            allow_private_addresses=True,
            allow_http=True,
            timeout_seconds=3,
            breaker_failure_threshold=2,
            breaker_open_seconds=60,
            disable_after_hours=1,
        ),
    )
    owner = Principal(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        email_verified=True,
        is_admin=False,
        credential=Credential.SESSION,
    )
    yield World(database, settings, clock, Member(OrgView.of(org), Role.OWNER, owner))
    async with database.unit_of_work() as session:
        await session.execute(delete(Organisation).where(Organisation.id == org.id))
        await session.execute(delete(User).where(User.id == user.id))
    await empty_background_tables(engine)


async def register(world: World, receiver: Receiver) -> service.EndpointView:
    async with world.database.unit_of_work() as session:
        endpoint, secret = await service.register(
            session,
            world.context(),
            world.member,
            url=receiver.url,
            event_types=["member.joined"],
            description="",
        )
    receiver.secret = secret
    return endpoint


async def fan_out_one(world: World) -> int:
    event = Event("evt_1", "member.joined", world.clock.now(), world.member.org.id, {"user_id": 7})
    async with world.database.unit_of_work() as session:
        await service.fan_out(session, event, world.clock.now())
        return (await session.scalars(select(WebhookDelivery.id))).one()


async def reload(world: World, model: type, key: int) -> object:
    async with world.database.unit_of_work() as session:
        return await session.get(model, key)


async def attempts(world: World) -> list[WebhookAttempt]:
    async with world.database.unit_of_work() as session:
        return list(
            (await session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id))).all()
        )


async def test_a_delivery_is_signed_per_standard_webhooks_and_logged(
    world: World, receiver: Receiver
) -> None:
    endpoint = await register(world, receiver)
    delivery_id = await fan_out_one(world)

    await deliver(world.job(), {"delivery_id": delivery_id})

    [request] = receiver.received
    assert request["verified"] is True  # the receiver checked the signature with the secret
    headers = request["headers"]
    assert isinstance(headers, dict)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert request["payload"] == {
        "id": "evt_1",
        "type": "member.joined",
        "timestamp": world.clock.now().isoformat(),
        "data": {"user_id": 7},
    }
    delivery = await reload(world, WebhookDelivery, delivery_id)
    assert isinstance(delivery, WebhookDelivery)
    assert delivery.status == "succeeded"
    [attempt] = await attempts(world)
    assert attempt.status_code == 200
    assert attempt.response_excerpt == '{"ok": true}'
    assert attempt.latency_ms >= 0
    assert endpoint.id == delivery.endpoint_id


async def test_fan_out_only_reaches_endpoints_subscribed_to_the_type(
    world: World, receiver: Receiver
) -> None:
    await register(world, receiver)
    event = Event("evt_2", "invitation.created", world.clock.now(), world.member.org.id, {})
    async with world.database.unit_of_work() as session:
        created = await service.fan_out(session, event, world.clock.now())

    assert created == 0


async def test_a_failed_delivery_is_logged_and_retried(world: World, receiver: Receiver) -> None:
    await register(world, receiver)
    receiver.status, receiver.reply = 503, b"overloaded, come back later"
    delivery_id = await fan_out_one(world)

    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        await deliver(world.job(), {"delivery_id": delivery_id})

    [attempt] = await attempts(world)
    assert (attempt.status_code, attempt.response_excerpt) == (503, "overloaded, come back later")
    delivery = await reload(world, WebhookDelivery, delivery_id)
    assert isinstance(delivery, WebhookDelivery)
    assert delivery.status == "failed"


async def test_redirects_are_not_followed(world: World, receiver: Receiver) -> None:
    await register(world, receiver)
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    delivery_id = await fan_out_one(world)

    with pytest.raises(DeliveryFailed, match="HTTP 302"):
        await deliver(world.job(), {"delivery_id": delivery_id})

    assert len(receiver.received) == 1


async def test_the_guard_refuses_loopback_without_the_test_setting(
    world: World, receiver: Receiver
) -> None:
    await register(world, receiver)
    delivery_id = await fan_out_one(world)
    strict = world.settings.webhooks.model_copy(update={"allow_private_addresses": False})
    world.settings = world.settings.model_copy(update={"webhooks": strict})

    with pytest.raises(DeliveryFailed, match="not a public address"):
        await deliver(world.job(), {"delivery_id": delivery_id})

    assert receiver.received == []  # no connection was made


async def test_an_open_breaker_holds_deliveries_back_without_calling(
    world: World, receiver: Receiver
) -> None:
    endpoint = await register(world, receiver)
    receiver.status = 500
    delivery_id = await fan_out_one(world)
    for attempt in (1, 2):  # the threshold is 2
        with pytest.raises(DeliveryFailed):
            await deliver(world.job(attempt), {"delivery_id": delivery_id})

    await deliver(world.job(3), {"delivery_id": delivery_id})

    assert len(receiver.received) == 2  # the third try never left
    opened = await reload(world, WebhookEndpoint, endpoint.id)
    assert isinstance(opened, WebhookEndpoint)
    async with world.database.unit_of_work() as session:
        held = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    # Queued again for when the breaker allows a trial, with the attempt not spent.
    assert (held[-1].labels, held[-1].available_at) == ({"attempt": 3}, opened.breaker_open_until)


async def test_an_endpoint_failing_for_too_long_is_disabled_and_its_owners_told(
    world: World, receiver: Receiver
) -> None:
    endpoint = await register(world, receiver)
    receiver.status = 500
    delivery_id = await fan_out_one(world)
    with pytest.raises(DeliveryFailed):
        await deliver(world.job(1), {"delivery_id": delivery_id})
    world.clock.advance(hours=2)  # past disable_after_hours, and past the breaker

    with pytest.raises(PermanentFailure, match="disabled"):
        await deliver(world.job(2), {"delivery_id": delivery_id})

    disabled = await reload(world, WebhookEndpoint, endpoint.id)
    assert isinstance(disabled, WebhookEndpoint)
    assert disabled.disabled_at == world.clock.now()
    async with world.database.unit_of_work() as session:
        query = select(OutboxMessage).where(OutboxMessage.task_name == "mail.send")
        mails = (await session.scalars(query)).all()
    assert len(mails) == 1
    assert mails[0].args[0]["to"] == "owner@example.org"
    assert receiver.url in mails[0].args[0]["text"]


def delivery_count(outcome: str) -> float:
    labels = {"outcome": outcome}
    return REGISTRY.get_sample_value("skilltree_webhook_deliveries_total", labels) or 0.0


async def test_each_delivery_outcome_moves_its_counter(world: World, receiver: Receiver) -> None:
    """Delivered, failed (retried later) and dead-lettered (the last attempt failed) are each
    counted under their own outcome, and only there."""
    await register(world, receiver)
    outcomes = ("delivered", "failed", "dead_lettered")
    before = {outcome: delivery_count(outcome) for outcome in outcomes}

    delivery_id = await fan_out_one(world)
    receiver.status = 500
    with pytest.raises(DeliveryFailed):
        await deliver(world.job(1), {"delivery_id": delivery_id})
    after_failure = {outcome: delivery_count(outcome) - before[outcome] for outcome in outcomes}
    with pytest.raises(DeliveryFailed):
        await deliver(world.job(8), {"delivery_id": delivery_id})  # the last of 8 attempts
    after_dead = {outcome: delivery_count(outcome) - before[outcome] for outcome in outcomes}
    world.clock.advance(minutes=2)  # past the breaker the two failures opened
    receiver.status = 200
    event = Event("evt_9", "member.joined", world.clock.now(), world.member.org.id, {})
    async with world.database.unit_of_work() as session:
        await service.fan_out(session, event, world.clock.now())
        delivered_id = max((await session.scalars(select(WebhookDelivery.id))).all())
    await deliver(world.job(1), {"delivery_id": delivered_id})
    after_success = {outcome: delivery_count(outcome) - before[outcome] for outcome in outcomes}

    assert after_failure == {"delivered": 0, "failed": 1, "dead_lettered": 0}
    assert after_dead == {"delivered": 0, "failed": 1, "dead_lettered": 1}
    assert after_success == {"delivered": 1, "failed": 1, "dead_lettered": 1}
    delivery = await reload(world, WebhookDelivery, delivery_id)
    assert isinstance(delivery, WebhookDelivery)
    assert delivery.status == "dead"
