"""Durable delivery checks: one row per fulfilled session, due for the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, String
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime, utcnow


class DeliveryCheck(SQLModel, table=True):
    """A promise to verify a session's delivery on chain, kept until it is decided.

    Written in the same transaction that records Stripe's `fulfillment_complete`, so a
    fulfilled session can never be left without a check.
    """

    __tablename__ = "delivery_checks"

    onramp_session_id: str = Field(sa_type=String(32), primary_key=True)
    due_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Where a search for an unknown transaction starts: the first block after the
    # session was created, found once and kept.
    search_from_block: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
