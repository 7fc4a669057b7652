"""The merchant webhooks' tables: endpoints, the outbox of events, one delivery per event
and endpoint, and the log of every attempt; and the shapes their rows have in code."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime, new_id, utcnow

ENDPOINT_ID_PREFIX = "we"
EVENT_ID_PREFIX = "msg"


class WebhookEndpoint(SQLModel, table=True):
    """A merchant's URL and the secret its deliveries are signed with.

    The secret is stored as it is: each delivery is signed with it (HMAC), so it must be
    recoverable; whoever reads this table can sign as the service (docs/operations.md).
    """

    __tablename__ = "merchant_webhook_endpoints"

    id: str = Field(
        default_factory=lambda: new_id(ENDPOINT_ID_PREFIX), sa_type=String(32), primary_key=True
    )
    url: str = Field(sa_type=String(2048))
    # The event types it takes, comma-separated; every type when null.
    events: str | None = Field(default=None, sa_type=String(512))
    description: str | None = Field(default=None, sa_type=String(500))
    status: str = Field(sa_type=String(16))
    secret: str = Field(sa_type=String(128))
    # The secret before the last rotation, still signing until `previous_secret_until`.
    previous_secret: str | None = Field(default=None, sa_type=String(128))
    previous_secret_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The first failed attempt since the last success; null while it succeeds.
    failing_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OutgoingEvent(SQLModel, table=True):
    """One event, written in the transaction of the change it tells of (the outbox). Its
    id is the `webhook-id` of every delivery and retry of it."""

    __tablename__ = "merchant_webhook_events"
    __table_args__ = (Index("ix_merchant_webhook_events_created_at", "created_at"),)

    id: str = Field(
        default_factory=lambda: new_id(EVENT_ID_PREFIX), sa_type=String(32), primary_key=True
    )
    type: str = Field(sa_type=String(64))
    onramp_session_id: str = Field(sa_type=String(32))
    # The JSON sent, fixed once written: every retry signs the same bytes. Null when the
    # event was written by a statement that could not render it (a Stripe event applied
    # in one statement, service/webhooks/repository.py): the dispatcher's first claim
    # then renders it from `session`, the row as the change left it (as JSON, without
    # the client secret), and keeps it.
    body: str | None = Field(default=None, sa_type=Text)
    session: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OutgoingDelivery(SQLModel, table=True):
    """One event to one endpoint: due until it is delivered or given up (`finished_at`)."""

    __tablename__ = "merchant_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_merchant_webhook_deliveries_due", "endpoint_id", "finished_at", "due_at"),
        Index("ix_merchant_webhook_deliveries_open", "finished_at", "created_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    event_id: str = Field(sa_type=String(32))
    endpoint_id: str = Field(sa_type=String(32))
    due_at: datetime = Field(sa_type=UtcDateTime)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # A dispatcher's lease: another takes the delivery only once it has passed.
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # `delivered` or `given_up`, and when; both null while the delivery is due.
    outcome: str | None = Field(default=None, sa_type=String(16))
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class DeliveryAttempt(SQLModel, table=True):
    """One attempt of one delivery, as the endpoint answered it (the delivery log)."""

    __tablename__ = "merchant_webhook_attempts"
    __table_args__ = (
        Index("ix_merchant_webhook_attempts_endpoint_at", "endpoint_id", "at"),
        Index("ix_merchant_webhook_attempts_at", "at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    event_id: str = Field(sa_type=String(32))
    endpoint_id: str = Field(sa_type=String(32))
    type: str = Field(sa_type=String(64))
    attempt: int = Field(sa_column=Column(Integer, nullable=False))
    at: datetime = Field(sa_type=UtcDateTime)
    status_code: int | None = Field(default=None, sa_type=Integer)
    error: str | None = Field(default=None, sa_type=String(500))
    duration_ms: int = Field(sa_column=Column(Integer, nullable=False))
    # The first KiB of what the endpoint answered.
    response_body: str | None = Field(default=None, sa_type=Text)


class EndpointRow(msgspec.Struct):
    """An endpoint as statements read it, by column name."""

    id: str
    url: str
    events: str | None
    description: str | None
    status: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    failing_since: datetime | None
    created_at: datetime


class AttemptRow(msgspec.Struct):
    """A delivery log line as statements read and write it, by column name."""

    event_id: str
    endpoint_id: str
    type: str
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str | None


ENDPOINT_COLUMNS: tuple[str, ...] = EndpointRow.__struct_fields__
ATTEMPT_COLUMNS: tuple[str, ...] = AttemptRow.__struct_fields__
