"""The rules of webhooks: who registers endpoints, what is delivered, when an endpoint is
given up on. Owners only: an endpoint receives the organisation's events, members' e-mail
addresses included."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.orgs.service import Member, Role
from skilltree.platform.clock import Clock
from skilltree.platform.config import WebhookSettings
from skilltree.platform.crypto import SecretBox
from skilltree.platform.events import Event
from skilltree.platform.queue import outbox
from skilltree.webhooks import repository
from skilltree.webhooks.errors import DeliveryNotFound, EndpointNotFound
from skilltree.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from skilltree.webhooks.signing import new_secret
from skilltree.webhooks.ssrf import resolve

DELIVER_TASK = "webhooks.deliver"
TEST_EVENT = "webhook.test"
ALL_EVENTS = "*"


@dataclass(frozen=True)
class WebhookContext:
    clock: Clock
    settings: WebhookSettings
    secret_box: SecretBox


async def register(
    db: AsyncSession,
    ctx: WebhookContext,
    member: Member,
    *,
    url: str,
    event_types: list[str],
    description: str,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it with its signing secret, which is never shown again."""
    member.require(Role.OWNER)
    # Refused now with a clear 422; checked again at every delivery, where it really counts.
    await resolve(
        url, allow_private=ctx.settings.allow_private_addresses, allow_http=ctx.settings.allow_http
    )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        org_id=member.org.id,
        url=url,
        event_types=sorted(set(event_types)),
        description=description,
        secret_encrypted=ctx.secret_box.encrypt(secret),
        created_by=member.caller.user_id,
        created_at=ctx.clock.now(),
        consecutive_failures=0,
    )
    repository.add(db, endpoint)
    await repository.flush(db)
    return endpoint, secret


async def endpoints(db: AsyncSession, member: Member) -> Sequence[WebhookEndpoint]:
    member.require(Role.OWNER)
    return await repository.endpoints_of(db, member.org.id)


async def endpoint(db: AsyncSession, member: Member, endpoint_id: int) -> WebhookEndpoint:
    member.require(Role.OWNER)
    found = await repository.endpoint_of(db, member.org.id, endpoint_id)
    if found is None:
        raise EndpointNotFound(endpoint_id)
    return found


async def remove(db: AsyncSession, member: Member, endpoint_id: int) -> None:
    await repository.delete(db, await endpoint(db, member, endpoint_id))


async def delivery_log(
    db: AsyncSession, member: Member, endpoint_id: int, *, limit: int
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    target = await endpoint(db, member, endpoint_id)
    deliveries = await repository.deliveries_of(db, target.id, limit)
    attempts = await repository.attempts_of(db, [d.id for d in deliveries])
    return [(delivery, attempts[delivery.id]) for delivery in deliveries]


async def redeliver(
    db: AsyncSession, ctx: WebhookContext, member: Member, endpoint_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh set of attempts (same event id, so a receiver
    that already has it can tell)."""
    target = await endpoint(db, member, endpoint_id)
    delivery = await repository.delivery_of(db, target.id, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(delivery_id)
    delivery.status = "pending"
    _queue(db, delivery, ctx.clock.now())
    return delivery


async def send_test_event(
    db: AsyncSession, ctx: WebhookContext, member: Member, endpoint_id: int
) -> WebhookDelivery:
    target = await endpoint(db, member, endpoint_id)
    now = ctx.clock.now()
    event = Event(
        id=uuid.uuid4().hex,
        type=TEST_EVENT,
        occurred_at=now,
        org_id=member.org.id,
        data={"org": member.org.slug, "message": "This is a test event from skilltree."},
    )
    delivery = _new_delivery(target, event, now)
    repository.add(db, delivery)
    await repository.flush(db)
    _queue(db, delivery, now)
    return delivery


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return ALL_EVENTS in endpoint.event_types or event_type in endpoint.event_types


async def fan_out(db: AsyncSession, event: Event, now: datetime) -> int:
    """One delivery per subscribed endpoint of the event's organisation; returns how many."""
    if event.org_id is None:
        return 0
    created = 0
    for target in await repository.subscribed(db, event.org_id):
        if not wants(target, event.type):
            continue
        if await repository.delivery_by_event(db, target.id, event.id) is not None:
            continue  # already fanned out (a redelivered event)
        delivery = _new_delivery(target, event, now)
        repository.add(db, delivery)
        await repository.flush(db)
        _queue(db, delivery, now)
        created += 1
    return created


def _new_delivery(target: WebhookEndpoint, event: Event, now: datetime) -> WebhookDelivery:
    body = orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": event.occurred_at.isoformat(),
            "data": event.data,
        }
    ).decode()
    return WebhookDelivery(
        endpoint_id=target.id,
        event_id=event.id,
        event_type=event.type,
        body=body,
        status="pending",
        attempts=0,
        created_at=now,
    )


def _queue(db: AsyncSession, delivery: WebhookDelivery, now: datetime) -> None:
    outbox.enqueue(db, DELIVER_TASK, {"delivery_id": delivery.id}, now=now)


def breaker_is_open(target: WebhookEndpoint, now: datetime) -> bool:
    return target.breaker_open_until is not None and now < target.breaker_open_until


def record_success(target: WebhookEndpoint) -> None:
    target.consecutive_failures = 0
    target.breaker_open_until = None
    target.failing_since = None


def record_failure(target: WebhookEndpoint, settings: WebhookSettings, now: datetime) -> bool:
    """Count a failed attempt; open the breaker at the threshold. Returns True when the
    endpoint has now failed for so long that it is disabled."""
    target.consecutive_failures += 1
    target.failing_since = target.failing_since or now
    if target.consecutive_failures >= settings.breaker_failure_threshold:
        # Open (or re-open after a failed trial): hold deliveries back for a while.
        target.breaker_open_until = now + timedelta(seconds=settings.breaker_open_seconds)
    if now - target.failing_since >= timedelta(hours=settings.disable_after_hours):
        target.disabled_at = now
        target.disabled_reason = "Every delivery failed for too long."
        return True
    return False
