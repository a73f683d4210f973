"""Webhook background work: fan events out to endpoints, and deliver each one.

Retries follow a published schedule (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), then the
delivery is dead-lettered. An open circuit breaker holds deliveries back without spending their
attempts; an endpoint that has failed for days is disabled and its owners are e-mailed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.orgs import service as orgs
from skilltree.platform.events import Event
from skilltree.platform.mail import SEND_TASK, Message
from skilltree.platform.observability import metrics
from skilltree.platform.queue import outbox
from skilltree.platform.queue.retry import PermanentFailure, RetryPolicy
from skilltree.platform.queue.tasks import Job, Payload, task
from skilltree.webhooks import client, repository, service
from skilltree.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from skilltree.webhooks.signing import signature_headers

WEBHOOK_RETRY = RetryPolicy(
    max_attempts=8, schedule=(5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
)


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; the attempt is retried on the schedule."""


FAN_OUT = "webhooks.fan-out"  # the consumer's name: which events it has applied is stored by it


async def fan_out(session: AsyncSession, job: Job, event: Event) -> None:
    await service.fan_out(session, event, job.resources.clock.now())


@task(service.DELIVER_TASK, retry=WEBHOOK_RETRY, timeout_seconds=60.0)
async def deliver(job: Job, payload: Payload) -> None:
    resources = job.resources
    settings = resources.settings
    now = resources.clock.now()
    delivery_id = int(payload["delivery_id"])
    async with resources.database.unit_of_work() as session:
        loaded = await _load(session, delivery_id)
        if loaded is None:
            return  # the endpoint was deleted, or the delivery already succeeded
        delivery, endpoint = loaded
        if service.breaker_is_open(endpoint, now):
            metrics.WEBHOOK_DELIVERIES.labels("held").inc()
            assert endpoint.breaker_open_until is not None
            wait = (endpoint.breaker_open_until - now).total_seconds()
            # Held back, not attempted: the same attempt number runs when the breaker allows.
            outbox.enqueue(
                session,
                service.DELIVER_TASK,
                payload,
                now=now,
                delay_seconds=wait,
                attempt=job.attempt,
            )
            return
        headers = signature_headers(
            job.resources.secret_box.decrypt(endpoint.secret_encrypted),
            delivery.event_id,
            now,
            delivery.body,
        )
        url, body = endpoint.url, delivery.body
    result = await client.post(url, body, headers, settings.webhooks)
    async with resources.database.unit_of_work() as session:
        loaded = await _load(session, delivery_id)
        if loaded is None:
            return
        delivery, endpoint = loaded
        disabled = _record(session, job, delivery, endpoint, result)
        if disabled:
            for owner in await orgs.owner_emails(session, endpoint.org_id):
                outbox.enqueue(
                    session, SEND_TASK, _disabled_notice(owner, endpoint).to_payload(), now=now
                )
    metrics.WEBHOOK_DELIVERIES.labels(_outcome(result, disabled, job)).inc()
    if disabled:
        raise PermanentFailure(f"endpoint {endpoint.id} disabled after failing for too long")
    if not result.succeeded:
        raise DeliveryFailed(result.error or f"HTTP {result.status_code}")


async def _load(
    session: AsyncSession, delivery_id: int
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    delivery = await repository.get_delivery(session, delivery_id)
    if delivery is None or delivery.status == "succeeded":
        return None
    endpoint = await repository.get_endpoint(session, delivery.endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        return None
    return delivery, endpoint


def _outcome(result: client.AttemptResult, disabled: bool, job: Job) -> str:
    """The attempt's label: a failure that is retried later is not one that is dead-lettered."""
    if result.succeeded:
        return "delivered"
    if disabled:
        return "disabled"
    return "dead_lettered" if job.is_last_attempt else "failed"


def _record(
    session: AsyncSession,
    job: Job,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    result: client.AttemptResult,
) -> bool:
    now = job.resources.clock.now()
    repository.add(
        session,
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.excerpt,
            error=result.error,
            details={"attempt": job.attempt},
        ),
    )
    delivery.attempts += 1
    if result.succeeded:
        delivery.status = "succeeded"
        delivery.delivered_at = now
        service.record_success(endpoint)
        return False
    disabled = service.record_failure(endpoint, job.resources.settings.webhooks, now)
    delivery.status = "dead" if disabled or job.is_last_attempt else "failed"
    return disabled


def _disabled_notice(owner: str, endpoint: WebhookEndpoint) -> Message:
    return Message(
        to=owner,
        subject="A skilltree webhook endpoint was disabled",
        text=(
            f"Every delivery to {endpoint.url} has failed for a long time, so skilltree "
            "stopped sending to it.\n\nFix the receiver, then register the endpoint again; "
            "the delivery log shows what it answered.\n"
        ),
    )
