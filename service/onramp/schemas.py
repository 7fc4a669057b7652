"""The JSON of the onramp routes: camelCase, unknown fields refused, money as strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec

from service.onramp.models import NewSession, OnrampSession
from service.onramp.state import Status

Text = Annotated[str, msgspec.Meta(max_length=64)]
S = TypeVar("S", bound="SessionSummary")


class _Schema(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


# Published with its pattern, so that generated clients type it as a string; anything
# else is refused as `invalid_amount` (service/errors.py), like an amount out of shape.
SourceAmount = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{1,12}(\.[0-9]{1,2})?$",
        description="A positive decimal string with at most two fraction digits.",
        examples=["100.00"],
    ),
]
DeliveryStatus = Literal["not_started", "pending", "confirmed", "mismatch", "failed"]


class SessionCreate(_Schema):
    wallet_address: Text
    source_amount: SourceAmount
    source_currency: Text | None = None
    destination_currency: Text | None = None
    destination_network: Text | None = None


class Delivery(_Schema):
    status: DeliveryStatus
    confirmations: int
    block_number: int | None
    delivered_amount: str | None
    checked_at: datetime | None
    detail: str | None


class SessionSummary(_Schema):
    """A session as operators see it: everything but the client secret."""

    id: str
    stripe_session_id: str | None
    status: Status
    wallet_address: str
    source_amount: str
    source_currency: str
    destination_amount: str | None
    destination_currency: str
    destination_network: str
    transaction_hash: str | None
    delivery: Delivery
    created_at: datetime
    updated_at: datetime


class SessionPublic(SessionSummary):
    """A session as its owner sees it, with the secret Stripe's widget needs."""

    client_secret: str | None = None


class SessionPage(_Schema):
    items: list[SessionPublic]
    next_cursor: str | None


class SessionSummaryPage(_Schema):
    items: list[SessionSummary]
    next_cursor: str | None


def _delivery(session: OnrampSession | NewSession) -> Delivery:
    return Delivery(
        status=cast(DeliveryStatus, session.delivery_status),
        confirmations=session.delivery_confirmations,
        block_number=session.delivery_block_number,
        delivered_amount=session.delivered_amount,
        checked_at=session.delivery_checked_at,
        detail=session.delivery_detail,
    )


def summary(session: OnrampSession) -> SessionSummary:
    return _build(SessionSummary, session)


def public(session: OnrampSession | NewSession) -> SessionPublic:
    built = _build(SessionPublic, session)
    built.client_secret = session.client_secret
    return built


def _build(shape: type[S], session: OnrampSession | NewSession) -> S:
    return shape(
        id=session.id,
        stripe_session_id=session.stripe_session_id,
        status=cast(Status, session.status),
        wallet_address=session.wallet_address,
        source_amount=session.source_amount,
        source_currency=session.source_currency,
        destination_amount=session.destination_amount,
        destination_currency=session.destination_currency,
        destination_network=session.destination_network,
        transaction_hash=session.transaction_hash,
        delivery=_delivery(session),
        created_at=session.created_at,
        updated_at=session.updated_at,
    )


# The columns a read selects, in this order (service/onramp/repository.py), so that a
# row becomes the response without an ORM object in between.
ROW_FIELDS = (
    "id",
    "stripe_session_id",
    "client_secret",
    "status",
    "wallet_address",
    "source_amount",
    "source_currency",
    "destination_amount",
    "destination_currency",
    "destination_network",
    "transaction_hash",
    "delivery_status",
    "delivery_confirmations",
    "delivery_block_number",
    "delivered_amount",
    "delivery_checked_at",
    "delivery_detail",
    "created_at",
    "updated_at",
)


def _in_utc(moment: datetime) -> datetime:
    """In UTC; a time already at offset zero (PostgreSQL's answer in a UTC session) is
    kept as it is: it reads the same in JSON, and a page holds forty of them."""
    return moment if not moment.utcoffset() else moment.astimezone(UTC)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _in_utc(moment)


def public_from_row(row: tuple[Any, ...]) -> SessionPublic:
    """A session as its owner sees it, from a row of `ROW_FIELDS`. Positional, in the
    structs' field order: a page builds twenty of these, and keywords cost a third more."""
    return SessionPublic(
        row[0],  # id
        row[1],  # stripe_session_id
        row[3],  # status
        row[4],  # wallet_address
        row[5],  # source_amount
        row[6],  # source_currency
        row[7],  # destination_amount
        row[8],  # destination_currency
        row[9],  # destination_network
        row[10],  # transaction_hash
        Delivery(row[11], row[12], row[13], row[14], _utc(row[15]), row[16]),
        _in_utc(row[17]),  # created_at
        _in_utc(row[18]),  # updated_at
        row[2],  # client_secret
    )
