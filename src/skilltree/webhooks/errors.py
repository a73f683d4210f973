"""Errors of the webhooks domain."""

from __future__ import annotations

from skilltree.platform.errors import NotFound


class EndpointNotFound(NotFound):
    type_slug = "webhook-endpoint-not-found"
    title = "Webhook endpoint not found"

    def __init__(self, endpoint_id: int) -> None:
        super().__init__(f"There is no webhook endpoint {endpoint_id} here.")


class DeliveryNotFound(NotFound):
    type_slug = "webhook-delivery-not-found"
    title = "Webhook delivery not found"

    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"There is no delivery {delivery_id} for this endpoint.")
