"""What can differ between Stripe's word, ours and the chain's, for one session. Pure:
the gathering is in gather.py, so every kind of drift is tested without servers.

The kinds, as the report names them:
- `missing_locally`: Stripe has a session of ours that this database has not (a restore);
  `missing_at_stripe`: the reverse; `stripe_id_not_stored`: we have the session but not
  Stripe's answer to its create call (a crash or a restore in between);
  `duplicate_at_stripe`: a second Stripe session naming one of ours.
- `stripe_ahead`: Stripe's status is further on than ours (lost webhooks);
  `local_ahead`: ours is further on than Stripe's; `status_differs`: neither follows
  from the other (one rejected, the other fulfilled).
- `amount_differs`, `fees_differ`, `transaction_differs`: the same status, other figures.
- `fulfilled_not_delivered`: fulfilled, and the chain shows no delivery: the check
  failed, never started, or is pending past the delivery time-out.
- `delivered_short`: the transfer found is smaller than what Stripe says it sent;
  `delivery_mismatch`: a transfer that does not match in another way.
- `transfer_reused`: the session names a transfer that another session also names.
- `stripe_malformed`: Stripe's object for the session is not a session this service can
  read (stripe_shape.py says why); it is compared with nothing. The report was made, but
  not of everything, so it is told apart from the others in `reconcile`'s exit code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus, Lifecycle
from service.onramp.models import SessionRow
from service.onramp.updates import money, transaction_id

REUSED_DETAIL = "already proves session"
STRIPE_MALFORMED = "stripe_malformed"
# Every kind, in the order reports list them.
DRIFT_KINDS = (
    "missing_locally",
    "missing_at_stripe",
    "stripe_id_not_stored",
    "duplicate_at_stripe",
    "stripe_ahead",
    "local_ahead",
    "status_differs",
    "amount_differs",
    "fees_differ",
    "transaction_differs",
    "fulfilled_not_delivered",
    "delivered_short",
    "delivery_mismatch",
    "transfer_reused",
    STRIPE_MALFORMED,
)


def compare(
    ours: SessionRow | None,
    theirs: dict[str, Any] | None,
    *,
    delivery_started: datetime | None,
    now: datetime,
    delivery_timeout: timedelta,
    lifecycle: Lifecycle = LIFECYCLE,
) -> list[str]:
    if ours is None:
        return ["missing_locally"]
    if theirs is None:
        return ["missing_at_stripe"]
    if ours.stripe_session_id is None:
        return ["stripe_id_not_stored"]
    kinds = _status_drift(ours.status, str(theirs.get("status")), lifecycle)
    if not kinds:
        kinds = _figure_drift(ours, theirs, lifecycle.fulfilled)
    if ours.status == lifecycle.fulfilled:
        kinds += _delivery_drift(ours, delivery_started, now, delivery_timeout)
    return kinds


def _status_drift(ours: str, theirs: str, lifecycle: Lifecycle) -> list[str]:
    if ours == theirs:
        return []
    if not lifecycle.is_status(theirs):
        return ["status_differs"]
    if lifecycle.advance(ours, theirs) == theirs:
        return ["stripe_ahead"]
    if lifecycle.advance(theirs, ours) == ours:
        return ["local_ahead"]
    return ["status_differs"]


def _figure_drift(ours: SessionRow, theirs: dict[str, Any], fulfilled: str) -> list[str]:
    details = theirs.get("transaction_details")
    details = details if isinstance(details, dict) else {}
    kinds = []
    amounts = [(ours.source_amount, details.get("source_amount"))]
    if ours.status == fulfilled:
        amounts.append((ours.destination_amount, details.get("destination_amount")))
    if any(_amount(mine) != _amount(stripes) for mine, stripes in amounts):
        kinds.append("amount_differs")
    fees = details.get("fees")
    if isinstance(fees, dict):
        stated = (money(fees.get("network_fee_amount")), money(fees.get("transaction_fee_amount")))
        held = (ours.network_fee_amount, ours.transaction_fee_amount)
        if any(
            _amount(mine) != _amount(stripes) for mine, stripes in zip(held, stated, strict=True)
        ):
            kinds.append("fees_differ")
    stated_tx = transaction_id(details.get("transaction_id"))
    if ours.status == fulfilled and stated_tx is not None and stated_tx != ours.transaction_hash:
        kinds.append("transaction_differs")
    return kinds


def _delivery_drift(
    ours: SessionRow, started: datetime | None, now: datetime, timeout: timedelta
) -> list[str]:
    status = ours.delivery_status
    if status == DeliveryStatus.MISMATCH:
        if REUSED_DETAIL in (ours.delivery_detail or ""):
            return ["transfer_reused"]
        delivered, expected = _amount(ours.delivered_amount), _amount(ours.destination_amount)
        short = delivered is not None and expected is not None and delivered < expected
        return ["delivered_short" if short else "delivery_mismatch"]
    if status in (DeliveryStatus.FAILED, DeliveryStatus.NOT_STARTED):
        return ["fulfilled_not_delivered"]
    if status == DeliveryStatus.PENDING and started is not None and now - started > timeout:
        return ["fulfilled_not_delivered"]
    return []


def reused_transfers(sessions: Iterable[SessionRow]) -> set[str]:
    """Sessions naming a transfer that another session names too, but for the one the
    chain's verdict gave it to."""
    by_transfer: dict[tuple[str, str], list[SessionRow]] = defaultdict(list)
    for session in {session.id: session for session in sessions}.values():
        if session.transaction_hash and session.status == LIFECYCLE.fulfilled:
            by_transfer[(session.destination_network, session.transaction_hash)].append(session)
    return {
        session.id
        for named in by_transfer.values()
        if len(named) > 1
        for session in named
        if session.delivery_status != DeliveryStatus.CONFIRMED
    }


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
