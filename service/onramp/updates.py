"""Applying what Stripe says about a session, from a webhook, a sync or a replay.

Every path goes through `apply_update`: the state machine decides which statuses may
move to the new one, and one conditional UPDATE (a compare-and-set on the current
status, `repository.advance`) moves the session. Concurrent updates of one session,
from any number of processes, serialise on its row; each either moves it forward or
changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.columns import text_limit
from service.onramp import repository
from service.onramp.events import Changed, SessionChange, SessionEvents
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import SESSIONS
from service.onramp.rules import is_session_id
from service.sql import SqlTransaction

ONRAMP_OBJECT = "crypto.onramp_session"
APPLIED = "applied"
_EVM_TRANSACTION = re.compile(r"0x[0-9a-fA-F]{64}")
_MONEY = re.compile(r"[0-9]{1,20}(\.[0-9]{1,12})?")
# What of Stripe's text each column keeps, read from the model.
_S = SESSIONS.c
_STRIPE_ID, _OUR_ID, _TRANSACTION = (
    text_limit(_S.stripe_session_id),
    text_limit(_S.id),
    text_limit(_S.transaction_hash),
)
_AMOUNT = text_limit(_S.destination_amount)
_MONEY_TEXT = min(
    text_limit(c) for c in (_S.source_amount, _S.network_fee_amount, _S.transaction_fee_amount)
)


@dataclass(frozen=True)
class OnrampUpdate:
    """The part of a Stripe onramp session that moves ours."""

    stripe_session_id: str
    onramp_session_id: str | None
    status: str
    transaction_id: str | None
    destination_amount: str | None
    livemode: bool = False
    network_fee: str | None = None
    transaction_fee: str | None = None


@dataclass(frozen=True)
class Applied:
    """`applied` (something changed), `superseded` (older or repeated news),
    `unknown_session`, or `ignored` (a status this service does not know, or news from
    the other mode, live or test). `conflict` says what did not add up, for the log."""

    outcome: str
    onramp_session_id: str | None
    conflict: str | None = None


class DeliveryChecks(Protocol):
    """The delivery capability's part in Stripe's news: a session Stripe fulfils gets a
    check in the same transaction. Passed in by the caller (`service.delivery.checks`),
    which sits above both capabilities, so that onramp imports nothing of delivery."""

    async def schedule_check(
        self, sql: SqlTransaction, onramp_session_id: str, now: datetime
    ) -> None: ...

    async def reopen_check(
        self, sql: SqlTransaction, onramp_session_id: str, now: datetime
    ) -> None: ...


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
    fees = details.get("fees")
    fees = fees if isinstance(fees, dict) else {}
    return OnrampUpdate(
        stripe_session_id=session_id[:_STRIPE_ID],
        onramp_session_id=_short_text(metadata.get("onramp_session_id"), _OUR_ID),
        status=status,
        transaction_id=transaction_id(details.get("transaction_id")),
        destination_amount=_short_text(details.get("destination_amount"), _AMOUNT),
        livemode=obj.get("livemode") is True,
        network_fee=money(fees.get("network_fee_amount")),
        transaction_fee=money(fees.get("transaction_fee_amount")),
    )


def money(value: Any) -> str | None:
    """A fee as Stripe states it (a decimal string), or None for anything else."""
    text = _short_text(value, _MONEY_TEXT)
    return text if text is not None and _MONEY.fullmatch(text) else None


def our_session_id(obj: dict[str, Any]) -> str | None:
    """The id of ours a Stripe session carries in its metadata, if it is one: sessions
    made by another integration on the same account carry none."""
    metadata = obj.get("metadata")
    value = metadata.get("onramp_session_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and is_session_id(value) else None


def transaction_id(value: Any) -> str | None:
    """Stripe's `transaction_id` as stored: an EVM hash in lower case, whatever case it
    came in, so that one transaction is one value everywhere."""
    text = _short_text(value, _TRANSACTION)
    if text is not None and _EVM_TRANSACTION.fullmatch(text):
        return text.lower()
    return text


def _short_text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


async def apply_update(
    sql: SqlTransaction,
    update: OnrampUpdate,
    now: datetime,
    checks: DeliveryChecks,
    events: SessionEvents,
) -> Applied:
    """Move the session forward by `update`, and schedule its delivery check once
    fulfilled, in the caller's transaction. News for a fulfilled session (a late
    transaction id or amount) makes its check start again at once, even if it ended.
    A move of its status is told to `events` in the same transaction."""
    if not repository.can_advance_to(update.status):
        return Applied("ignored", None)
    news = news_of(update, now)
    names_fulfilment = any((update.transaction_id, update.destination_amount))
    names_fees = any((update.network_fee, update.transaction_fee))
    advanced = await repository.advance(sql, update.status, news)
    moved = advanced.id if advanced is not None else None
    if advanced is not None:  # merchant webhooks: the outbox row, with the move
        await events.record(sql, [SessionChange(advanced.id, Changed.STATUS, advanced)], now)
    if moved is None and update.status == LIFECYCLE.fulfilled and names_fulfilment:
        moved = await repository.fill_fulfilment(sql, news)
        if moved is not None:
            await checks.reopen_check(sql, moved, now)
    elif moved is not None and update.status == LIFECYCLE.fulfilled:
        await checks.schedule_check(sql, moved, now)
    if moved is None and names_fees:
        moved = await repository.fill_fees(sql, news)
    if moved is not None:
        return Applied(APPLIED, moved, _conflict(update, moved))
    existing = await repository.find(sql, news)
    if existing is None:
        return Applied("unknown_session", None)
    session_id, livemode = existing
    if livemode != update.livemode:
        mode = "live" if update.livemode else "test"
        other_mode = f"a {mode}-mode update for a session of the other mode"
        return Applied("ignored", session_id, other_mode)
    return Applied("superseded", session_id, _conflict(update, session_id))


def news_of(update: OnrampUpdate, now: datetime) -> dict[str, Any]:
    """The parameters of the statements that find the session and move it
    (`repository.moving` and those after it)."""
    return {
        "sid": update.stripe_session_id,
        "oid": update.onramp_session_id,
        "live": update.livemode,
        "tx": update.transaction_id,
        "amount": update.destination_amount,
        "network_fee": update.network_fee,
        "transaction_fee": update.transaction_fee,
        "now": now,
    }


def _conflict(update: OnrampUpdate, session_id: str) -> str | None:
    """Stripe's id and the metadata naming different sessions: Stripe's id wins."""
    named = update.onramp_session_id
    if named is None or named == session_id:
        return None
    return f"metadata names session {named}; Stripe's id is session {session_id}'s"
