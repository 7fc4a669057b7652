"""Stripe's session object applied to a session row in memory: the create call's answer.

Webhooks, syncs and replays move stored sessions by SQL instead (updates.py); this is
for the one row a create call holds, before or while storing it.
"""

from __future__ import annotations

from typing import Any

from service.columns import utcnow
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import SessionRow
from service.onramp.updates import money, transaction_id


def apply_stripe_session(session: SessionRow, stripe_session: dict[str, Any]) -> bool:
    """Bring `session` forward to what Stripe's object says; true if anything changed.

    The status only moves forward (`LIFECYCLE.advance`); fulfilment details are taken
    once Stripe reports them and never unset.
    """
    before = (session.stripe_session_id, session.status, session.transaction_hash)
    session.stripe_session_id = session.stripe_session_id or stripe_session["id"]
    session.client_secret = session.client_secret or stripe_session.get("client_secret")
    session.redirect_url = session.redirect_url or stripe_session.get("redirect_url")
    session.livemode = bool(stripe_session.get("livemode", False))
    session.status = LIFECYCLE.advance(session.status, str(stripe_session.get("status")))
    details = stripe_session.get("transaction_details") or {}
    session.source_amount = session.source_amount or details.get("source_amount")
    fees = details.get("fees") or {}
    session.network_fee_amount = money(fees.get("network_fee_amount")) or session.network_fee_amount
    session.transaction_fee_amount = (
        money(fees.get("transaction_fee_amount")) or session.transaction_fee_amount
    )
    if session.status == LIFECYCLE.fulfilled:
        session.transaction_hash = session.transaction_hash or transaction_id(
            details.get("transaction_id")
        )
        session.destination_amount = session.destination_amount or details.get("destination_amount")
    changed = before != (session.stripe_session_id, session.status, session.transaction_hash)
    if changed:
        session.updated_at = utcnow()
    return changed
