"""Request and response models of the webhooks API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

EventType = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z_]+(\.[a-z_]+)+)$", max_length=100)]


class EndpointIn(BaseModel):
    # The SSRF guard refuses anything but https (webhooks/ssrf.py); the document says so, so
    # that a client learns it before the 422. (Development may allow http: the document
    # describes the deployed service.)
    url: Annotated[
        str,
        StringConstraints(min_length=8, max_length=2000),
        Field(json_schema_extra={"pattern": "^https://[^/?#@\\s]+"}),
    ]
    event_types: list[EventType] = Field(min_length=1, max_length=50)
    description: Annotated[str, StringConstraints(max_length=200)] = ""


class EndpointOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    breaker_open_until: datetime | None


class CreatedEndpointOut(EndpointOut):
    # Shown once, at creation: it is stored encrypted and never returned again.
    secret: str


class EndpointListOut(BaseModel):
    items: list[EndpointOut]


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: list[AttemptOut]
    created_at: datetime
    delivered_at: datetime | None


class DeliveryListOut(BaseModel):
    items: list[DeliveryOut]


class DeliveryQueuedOut(BaseModel):
    delivery_id: int
    event_id: str
