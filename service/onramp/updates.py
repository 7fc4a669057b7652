"""Applying what Stripe says about a session, from a webhook, a sync or a replay.

Every path goes through `apply_update`, so the state machine and the row-level
compare-and-set guard every way a session can move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from service.delivery.repository import DeliveryCheckRepository
from service.onramp import state
from service.onramp.repository import SessionRepository

ONRAMP_OBJECT = "crypto.onramp_session"


@dataclass(frozen=True)
class OnrampUpdate:
    """The part of a Stripe onramp session that moves ours."""

    stripe_session_id: str
    onramp_session_id: str | None
    status: str
    transaction_id: str | None
    destination_amount: str | None


@dataclass(frozen=True)
class Applied:
    """`applied` (something changed), `superseded` (older or repeated news),
    `unknown_session`, or `ignored` (a status this service does not know)."""

    outcome: str
    onramp_session_id: str | None


def update_from_stripe(obj: Any) -> OnrampUpdate | None:
    """Read a `crypto.onramp_session` object without trusting its shape."""
    if not isinstance(obj, dict) or obj.get("object") != ONRAMP_OBJECT:
        return None
    session_id, status = obj.get("id"), obj.get("status")
    if not isinstance(session_id, str) or not isinstance(status, str):
        return None
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    details = obj.get("transaction_details")
    details = details if isinstance(details, dict) else {}
    return OnrampUpdate(
        stripe_session_id=session_id[:255],
        onramp_session_id=_short_text(metadata.get("onramp_session_id"), 32),
        status=status,
        transaction_id=_short_text(details.get("transaction_id"), 66),
        destination_amount=_short_text(details.get("destination_amount"), 80),
    )


def _short_text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


async def apply_update(db: AsyncSession, update: OnrampUpdate, now: datetime) -> Applied:
    """Move the session forward by `update`, and schedule its delivery check once
    fulfilled, in the caller's transaction."""
    if not state.is_status(update.status):
        return Applied("ignored", None)
    sessions = SessionRepository(db)
    moved = await sessions.advance(
        update.stripe_session_id,
        update.onramp_session_id,
        update.status,
        now,
        transaction_hash=update.transaction_id,
        destination_amount=update.destination_amount,
    )
    if moved is None and update.status == "fulfillment_complete":
        moved = await sessions.fill_fulfilment(
            update.stripe_session_id,
            update.onramp_session_id,
            update.transaction_id,
            update.destination_amount,
        )
    if moved is not None:
        if update.status == "fulfillment_complete":
            await DeliveryCheckRepository(db).schedule(moved, now)
        return Applied("applied", moved)
    found = await sessions.find_id(update.stripe_session_id, update.onramp_session_id)
    return Applied("superseded" if found else "unknown_session", found)
