"""Every table of the service, imported in one place so the metadata is complete.

Alembic's autogenerate and the test fixtures read `metadata` from here.
"""

from sqlmodel import SQLModel

from service.audit.models import OperatorAction
from service.auth.models import AuthNonce, StreamTicket
from service.delivery.models import DeliveryCheck, DeliveryCredit
from service.onramp.models import IdempotencyKey, OnrampSession
from service.webhooks.models import WebhookEvent

metadata = SQLModel.metadata

__all__ = [
    "AuthNonce",
    "DeliveryCheck",
    "DeliveryCredit",
    "IdempotencyKey",
    "OnrampSession",
    "OperatorAction",
    "StreamTicket",
    "WebhookEvent",
    "metadata",
]
