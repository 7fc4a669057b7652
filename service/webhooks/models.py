"""The append-only log of every verified Stripe event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime, utcnow


class WebhookEvent(SQLModel, table=True):
    """A Stripe event exactly as it arrived, and what processing it did.

    Stripe's event id is the primary key: the constraint, not a read before the write,
    is what makes a duplicate delivery a no-op, also when two arrive at once.
    """

    __tablename__ = "webhook_events"
    # Replays and the prune read the log by arrival; nothing reads it by type or session.
    __table_args__ = (Index("ix_webhook_events_received_at", "received_at", "id"),)

    id: str = Field(sa_type=String(255), primary_key=True)
    type: str = Field(sa_type=String(128))
    api_version: str | None = Field(default=None, sa_type=String(32))
    created: datetime = Field(sa_type=UtcDateTime)
    livemode: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    stripe_session_id: str | None = Field(default=None, sa_type=String(255))
    onramp_session_id: str | None = Field(default=None, sa_type=String(32))
    payload: str = Field(sa_type=Text)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    outcome: str | None = Field(default=None, sa_type=String(32))
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
