"""POST /api/v1/webhooks/stripe: Stripe's signed events, on the raw request bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from service.openapi import TOO_LARGE, problems
from service.webhooks.provider import WebhookServices

BODY_LIMIT = 1024 * 1024


class WebhookReceipt(msgspec.Struct, rename="camel"):
    received: bool
    event_id: str
    outcome: str


# What the route reads of an event before it stores it (service/webhooks/events.py).
_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    required=["id", "type", "created"],
    properties={
        "id": Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
        "type": Schema(type=OpenAPIType.STRING, max_length=128),
        "created": Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=2**35 - 1),
        "data": Schema(type=OpenAPIType.OBJECT),
    },
    description="A Stripe event, e.g. `crypto.onramp_session_updated`.",
)


@dataclass
class SignedEventOperation(Operation):
    """The handler reads the body as bytes and the signature header itself (it must verify
    the exact bytes before parsing anything), so Litestar sees neither; the document
    still has to show a caller what to send."""

    def __post_init__(self) -> None:
        self.parameters = [
            Parameter(
                name="Stripe-Signature",
                param_in="header",
                required=True,
                schema=Schema(type=OpenAPIType.STRING),
                description="`t=<unix time>,v1=<HMAC-SHA256 of '<t>.<raw body>'>`, "
                "from one of the STRIPE_WEBHOOK_SECRET secrets.",
            )
        ]
        self.request_body = RequestBody(
            content={MediaType.JSON: OpenAPIMediaType(schema=_EVENT)}, required=True
        )


@post(
    "/api/v1/webhooks/stripe",
    status_code=200,
    tags=["webhooks"],
    summary="Receive a signed Stripe event",
    request_max_body_size=BODY_LIMIT,
    operation_class=SignedEventOperation,
    responses=problems(
        {
            400: "The signature is missing, wrong or stale (`webhook_signature_invalid`), "
            "or the signed body is not an event (`invalid_event`); nothing is stored.",
            413: TOO_LARGE,
            500: "The event could not be applied; it is recorded as failed, and Stripe's "
            "redelivery applies it.",
            503: "No STRIPE_WEBHOOK_SECRET is configured (`webhooks_not_configured`), or "
            "the database is not reachable.",
        }
    ),
)
async def receive_stripe_event(request: Request[Any, Any, Any], state: State) -> WebhookReceipt:
    """The body is read as bytes and never parsed before its signature is verified."""
    payload = await request.body()
    receipt = await WebhookServices.of(state).ingestion.receive(
        payload, request.headers.get("stripe-signature")
    )
    return WebhookReceipt(received=True, event_id=receipt.event_id, outcome=receipt.outcome)


routes = [receive_stripe_event]
