"""HTTP routes of the webhooks domain: `/v1/orgs/{org}/webhooks...`, for owners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from skilltree.orgs.dependencies import OrgManager, OrgReader
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession
from skilltree.webhooks import service
from skilltree.webhooks.schemas import (
    AttemptOut,
    CreatedEndpointOut,
    DeliveryListOut,
    DeliveryOut,
    DeliveryQueuedOut,
    EndpointIn,
    EndpointListOut,
    EndpointOut,
)
from skilltree.webhooks.service import WebhookContext

router = APIRouter(prefix=f"{API_PREFIX}/orgs/{{org}}/webhooks", tags=["webhooks"])

READ_ERRORS = problem_responses(401, 403, 404)
WRITE_ERRORS = problem_responses(401, 403, 404, 422)


async def webhook_context(resources: AppResources) -> WebhookContext:
    settings = resources.settings
    return WebhookContext(
        clock=resources.clock,
        settings=settings.webhooks,
        secret_box=resources.secret_box,
    )


Webhooks = Annotated[WebhookContext, Depends(webhook_context)]


@router.post(
    "",
    response_model=CreatedEndpointOut,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE_ERRORS,
    # A retried registration returns the same endpoint and secret instead of a second endpoint.
    dependencies=[IDEMPOTENT],
)
async def create_endpoint(
    body: EndpointIn, member: OrgManager, db: DbSession, ctx: Webhooks
) -> CreatedEndpointOut:
    """Register an https endpoint for these event types (`*` for all). The signing secret is in
    this response only."""
    endpoint, secret = await service.register(
        db, ctx, member, url=body.url, event_types=body.event_types, description=body.description
    )
    return CreatedEndpointOut(**_endpoint_out(endpoint).model_dump(), secret=secret)


@router.get("", response_model=EndpointListOut, responses=READ_ERRORS)
async def list_endpoints(member: OrgReader, db: DbSession) -> EndpointListOut:
    return EndpointListOut(
        items=[_endpoint_out(endpoint) for endpoint in await service.endpoints(db, member)]
    )


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=READ_ERRORS,
)
async def delete_endpoint(endpoint_id: RowId, member: OrgManager, db: DbSession) -> Response:
    await service.remove(db, member, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryListOut, responses=READ_ERRORS)
async def list_deliveries(
    endpoint_id: RowId,
    member: OrgReader,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryListOut:
    """The delivery log, newest first: each attempt's status, latency and first bytes."""
    log = await service.delivery_log(db, member, endpoint_id, limit=limit)
    return DeliveryListOut(items=[_delivery_out(delivery) for delivery in log])


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryQueuedOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=READ_ERRORS,
)
async def redeliver(
    endpoint_id: RowId, delivery_id: RowId, member: OrgManager, db: DbSession, ctx: Webhooks
) -> DeliveryQueuedOut:
    queued = await service.redeliver(db, ctx, member, endpoint_id, delivery_id)
    return DeliveryQueuedOut(delivery_id=queued.delivery_id, event_id=queued.event_id)


@router.post(
    "/{endpoint_id}/test",
    response_model=DeliveryQueuedOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=READ_ERRORS,
)
async def send_test_event(
    endpoint_id: RowId, member: OrgManager, db: DbSession, ctx: Webhooks
) -> DeliveryQueuedOut:
    """Queue a `webhook.test` event to this endpoint."""
    queued = await service.send_test_event(db, ctx, member, endpoint_id)
    return DeliveryQueuedOut(delivery_id=queued.delivery_id, event_id=queued.event_id)


def _endpoint_out(endpoint: service.EndpointView) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        event_types=endpoint.event_types,
        description=endpoint.description,
        created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
        consecutive_failures=endpoint.consecutive_failures,
        breaker_open_until=endpoint.breaker_open_until,
    )


def _delivery_out(delivery: service.DeliveryView) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=[
            AttemptOut(
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                response_excerpt=a.response_excerpt,
                error=a.error,
            )
            for a in delivery.attempts
        ],
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )
