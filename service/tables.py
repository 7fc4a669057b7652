"""Every table of the service, imported in one place so the metadata is complete.

Alembic's autogenerate and the test fixtures read `metadata` from here.
"""

from sqlmodel import SQLModel

from service.audit.models import OperatorAction
from service.auth.models import AuthNonce, StreamTicket
from service.delivery.models import DeliveryCheck, DeliveryCredit
from service.merchant_webhooks.models import (
    DeliveryAttempt,
    OutgoingDelivery,
    OutgoingEvent,
    WebhookEndpoint,
)
from service.onramp.models import IdempotencyKey, OnrampSession
from service.operations.models import ReplicaSettings
from service.webhooks.models import WebhookEvent

metadata = SQLModel.metadata

__all__ = [
    "AuthNonce",
    "DeliveryAttempt",
    "DeliveryCheck",
    "DeliveryCredit",
    "IdempotencyKey",
    "OnrampSession",
    "OperatorAction",
    "OutgoingDelivery",
    "OutgoingEvent",
    "ReplicaSettings",
    "StreamTicket",
    "WebhookEndpoint",
    "WebhookEvent",
    "metadata",
]
