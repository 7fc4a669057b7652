"""The JSON of the onramp routes: camelCase, unknown fields refused, money as strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

from service.onramp.lifecycle import DeliveryStatus, Status
from service.onramp.models import SessionRow

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
DestinationAmount = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{1,12}(\.[0-9]{1,18})?$",
        description="Tokens to receive, instead of `sourceAmount`: a positive decimal "
        "string with no more fraction digits than the token has.",
        examples=["50"],
    ),
]


class SessionCreate(_Schema):
    wallet_address: Text
    source_amount: SourceAmount | None = None
    destination_amount: DestinationAmount | None = None
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


class Fees(_Schema):
    """Stripe's fees in the source currency, as Stripe reports them once it fulfils."""

    network_fee_amount: str | None
    transaction_fee_amount: str | None


class SessionSummary(_Schema):
    """A session as operators see it: everything but the client secret."""

    id: str
    stripe_session_id: str | None
    status: Status
    wallet_address: str
    source_amount: str | None  # null until Stripe prices a session bought by destinationAmount
    source_currency: str
    destination_amount: str | None
    destination_currency: str
    destination_network: str
    transaction_hash: str | None
    delivery: Delivery
    fees: Fees | None  # null until Stripe states them
    livemode: bool
    created_at: datetime
    updated_at: datetime


class SessionPublic(SessionSummary):
    """A session as its owner sees it, with the secret Stripe's widget needs."""

    client_secret: str | None = None
    # Stripe's hosted onramp page, for a dApp that redirects instead of embedding.
    redirect_url: str | None = None


class Quote(_Schema):
    """Stripe's estimate: what the card pays (`sourceTotalAmount`, fees included) and
    what the wallet receives."""

    source_amount: str | None
    source_total_amount: str
    source_currency: str
    destination_amount: str
    destination_currency: str
    destination_network: str
    network_fee: str | None
    transaction_fee: str | None
    rate_fetched_at: datetime
    livemode: bool


class SessionPage(_Schema):
    items: list[SessionPublic]
    next_cursor: str | None


class SessionSummaryPage(_Schema):
    items: list[SessionSummary]
    next_cursor: str | None


def version(session: SessionRow) -> int:
    """The row's version: microseconds of its last update, increasing with each change
    (the live stream's event id, a merchant webhook's `version`)."""
    return int(session.updated_at.timestamp() * 1_000_000)


def summary(session: SessionRow) -> SessionSummary:
    """A session as operators see it: without the client secret."""
    return SessionSummary(*_fields(session))


def public(session: SessionRow) -> SessionPublic:
    """A session as its owner sees it, with the secret Stripe's widget needs."""
    built = SessionPublic(*_fields(session))
    built.client_secret = session.client_secret
    built.redirect_url = session.redirect_url
    return built


def _fields(session: SessionRow) -> tuple[Any, ...]:
    """SessionSummary's fields, in its order; positional because a page builds forty of
    these and keywords cost a third more."""
    delivery = Delivery(
        session.delivery_status,  # type: ignore[arg-type]  # the column holds only these
        session.delivery_confirmations,
        session.delivery_block_number,
        session.delivered_amount,
        session.delivery_checked_at,
        session.delivery_detail,
    )
    return (
        session.id,
        session.stripe_session_id,
        session.status,
        session.wallet_address,
        session.source_amount,
        session.source_currency,
        session.destination_amount,
        session.destination_currency,
        session.destination_network,
        session.transaction_hash,
        delivery,
        _fees(session),
        bool(session.livemode),  # SQLite hands back 0 or 1
        session.created_at,
        session.updated_at,
    )


def _fees(session: SessionRow) -> Fees | None:
    if session.network_fee_amount is None and session.transaction_fee_amount is None:
        return None
    return Fees(session.network_fee_amount, session.transaction_fee_amount)
