"""Every query of the webhooks domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


async def endpoints_of(session: AsyncSession, org_id: int) -> Sequence[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id)
    return (await session.scalars(query.order_by(WebhookEndpoint.id))).all()


async def endpoint_of(
    session: AsyncSession, org_id: int, endpoint_id: int
) -> WebhookEndpoint | None:
    """An endpoint, only if it belongs to this organisation (tenant scoping)."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    return endpoint if endpoint is not None and endpoint.org_id == org_id else None


async def subscribed(session: AsyncSession, org_id: int) -> Sequence[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, WebhookEndpoint.disabled_at.is_(None)
    )
    return (await session.scalars(query)).all()


async def delivery_of(
    session: AsyncSession, endpoint_id: int, delivery_id: int
) -> WebhookDelivery | None:
    delivery = await session.get(WebhookDelivery, delivery_id)
    return delivery if delivery is not None and delivery.endpoint_id == endpoint_id else None


async def delivery_by_event(
    session: AsyncSession, endpoint_id: int, event_id: str
) -> WebhookDelivery | None:
    query = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.event_id == event_id
    )
    return (await session.scalars(query)).one_or_none()


async def deliveries_of(
    session: AsyncSession, endpoint_id: int, limit: int
) -> Sequence[WebhookDelivery]:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[int]
) -> dict[int, list[WebhookAttempt]]:
    """Every attempt of these deliveries, in one query (no N+1)."""
    found: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if not delivery_ids:
        return found
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id)
    )
    for attempt in (await session.scalars(query)).all():
        found[attempt.delivery_id].append(attempt)
    return found


async def get_delivery(session: AsyncSession, delivery_id: int) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)


async def get_endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


def add(session: AsyncSession, row: WebhookEndpoint | WebhookDelivery | WebhookAttempt) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def delete(session: AsyncSession, row: WebhookEndpoint) -> None:
    await session.delete(row)
