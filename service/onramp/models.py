"""The onramp session and idempotency key tables, and the one shape a session row has
in code (`SessionRow`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    column,
    false,
    not_,
    or_,
)
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime, new_id, table_of, utcnow
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus, Lifecycle
from service.sql import const


def settled(
    lifecycle: Lifecycle,
    status: ColumnElement[str] | None = None,
    delivery: ColumnElement[str] | None = None,
) -> ColumnElement[bool]:
    """`Lifecycle.is_settled` in SQL. A delivery is decided only once its session is
    fulfilled, so the delivery alone says it: the shortest predicate, and the one the
    partial index below is built on (the planner matches statements written alike, their
    values written in, not sent as parameters)."""
    status = column("status", String) if status is None else status
    delivery = column("delivery_status", String) if delivery is None else delivery
    exits = [const(s) for s in lifecycle.statuses if s in lifecycle.settled_statuses]
    by_status = status == exits[0] if len(exits) == 1 else status.in_(exits) if exits else false()
    return or_(by_status, delivery.in_([const(d) for d in lifecycle.settling_deliveries]))


UNSETTLED = not_(settled(LIFECYCLE))
SESSION_ID_PREFIX = "ors"


class OnrampSession(SQLModel, table=True):
    """One purchase of tokens by one wallet, and what the chain says about its delivery.

    Amounts are decimal strings: exact on every database, and the API speaks strings.
    """

    __tablename__ = "onramp_sessions"
    __table_args__ = (
        Index("ix_onramp_sessions_wallet_id", "wallet_address", "id"),
        Index("ix_onramp_sessions_status_id", "status", "id"),
        # Time ranges: `sessions replay --since`, `reconcile`, `sessions import`.
        Index("ix_onramp_sessions_created_at", "created_at"),
        # The few sessions still in flight, which keep their events from the prune
        # (service/webhooks/repository.py).
        Index(
            "ix_onramp_sessions_unsettled",
            "id",
            "stripe_session_id",
            postgresql_where=UNSETTLED,
            sqlite_where=UNSETTLED,
        ),
    )

    id: str = Field(
        default_factory=lambda: new_id(SESSION_ID_PREFIX), sa_type=String(32), primary_key=True
    )
    wallet_address: str = Field(sa_type=String(42))
    stripe_session_id: str | None = Field(
        default=None, sa_column=Column(String(255), unique=True, nullable=True)
    )
    client_secret: str | None = Field(default=None, sa_type=String(512))
    # Stripe's hosted onramp page for this session: another way to pay than the widget.
    redirect_url: str | None = Field(default=None, sa_type=String(1024))
    livemode: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    status: str = Field(default=LIFECYCLE.initial, sa_type=String(32))
    # None until Stripe prices a session bought by its destination amount.
    source_amount: str | None = Field(default=None, sa_type=String(32), nullable=True)
    source_currency: str = Field(sa_type=String(16))
    destination_currency: str = Field(sa_type=String(32))
    destination_network: str = Field(sa_type=String(32))
    destination_amount: str | None = Field(default=None, sa_type=String(80))
    transaction_hash: str | None = Field(default=None, sa_type=String(66))
    delivery_status: str = Field(default=DeliveryStatus.NOT_STARTED, sa_type=String(16))
    delivery_confirmations: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    delivery_block_number: int | None = Field(default=None, sa_type=BigInteger)
    delivery_block_hash: str | None = Field(default=None, sa_type=String(66))
    delivered_amount: str | None = Field(default=None, sa_type=String(80))
    delivery_checked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    delivery_detail: str | None = Field(default=None, sa_type=Text)
    # Stripe's fees in the source currency, known once Stripe starts fulfilment.
    network_fee_amount: str | None = Field(default=None, sa_type=String(32))
    transaction_fee_amount: str | None = Field(default=None, sa_type=String(32))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SessionRow(msgspec.Struct):
    """A session row as every statement reads and writes it, by column name.

    The table above defines the schema (migrations, metadata); this is what code holds:
    every column, with the same defaults, in a plain struct, because an ORM object costs
    about 80 µs to build and this a tenth of one (bench/README.md). A test checks that
    the two name the same columns with the same defaults.
    """

    wallet_address: str
    source_amount: str | None
    source_currency: str
    destination_currency: str
    destination_network: str
    id: str = msgspec.field(default_factory=lambda: new_id(SESSION_ID_PREFIX))
    stripe_session_id: str | None = None
    client_secret: str | None = None
    livemode: bool = False
    redirect_url: str | None = None
    status: str = LIFECYCLE.initial
    destination_amount: str | None = None
    transaction_hash: str | None = None
    delivery_status: str = DeliveryStatus.NOT_STARTED
    delivery_confirmations: int = 0
    delivery_block_number: int | None = None
    delivery_block_hash: str | None = None
    delivered_amount: str | None = None
    delivery_checked_at: datetime | None = None
    delivery_detail: str | None = None
    network_fee_amount: str | None = None
    transaction_fee_amount: str | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)


SESSION_COLUMNS: tuple[str, ...] = SessionRow.__struct_fields__
SESSIONS = table_of(OnrampSession)


@dataclass(frozen=True)
class DeliveryVerdict:
    """What the delivery worker's check concludes, as it is recorded on the session."""

    session_id: str
    status: str
    detail: str
    delivered_amount: str | None
    confirmations: int
    block_number: int | None
    block_hash: str | None


class IdempotencyKey(SQLModel, table=True):
    """A client's `Idempotency-Key` for one create call, and how far that call got.

    Stripe-style: the claim is one INSERT … ON CONFLICT; `locked_at` marks the request
    in flight; `onramp_session_id` is set once the local session is committed (so a
    retry resumes with it); `response_*` hold the final answer to replay.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("wallet_address", "key"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    wallet_address: str = Field(sa_type=String(42))
    key: str = Field(sa_type=String(255))
    fingerprint: str = Field(sa_type=String(64))
    locked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    onramp_session_id: str | None = Field(default=None, sa_type=String(32))
    response_status: int | None = Field(default=None, sa_type=Integer)
    response_body: str | None = Field(default=None, sa_type=Text)
    # The first request's customer IP, sent to Stripe again on every resumed attempt.
    customer_ip: str | None = Field(default=None, sa_type=String(45))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
