"""POST /api/v1/webhooks/stripe: Stripe's signed events, on the raw request bytes."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from service.webhooks.service import WebhookIngestion

BODY_LIMIT = 1024 * 1024


@post(
    "/api/v1/webhooks/stripe",
    status_code=200,
    tags=["webhooks"],
    summary="Receive a signed Stripe event",
    request_max_body_size=BODY_LIMIT,
)
async def receive_stripe_event(
    request: Request[Any, Any, Any], webhooks: NamedDependency[WebhookIngestion]
) -> dict[str, Any]:
    """The body is read as bytes and never parsed before its signature is verified."""
    payload = await request.body()
    receipt = await webhooks.receive(payload, request.headers.get("stripe-signature"))
    return {"received": True, "eventId": receipt.event_id, "outcome": receipt.outcome}


routes = [receive_stripe_event]
