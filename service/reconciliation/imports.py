"""Bringing back sessions that exist at Stripe but not here: after a database restore,
the sessions created since the backup (`onramp sessions import`).

Stripe keeps our id in each session's `metadata.onramp_session_id`, so a lost session
comes back under its own id, which its owner's dApp still holds. A session is stored
with one INSERT that does nothing when its id or its Stripe id is taken, so an import
never duplicates and can run again, alongside live traffic; a session that is here but
behind Stripe is brought forward as a replay would (never back), and one whose create
call never stored Stripe's answer gets it. A session Stripe's word would not change
costs no write. A fulfilled session comes back with its delivery check scheduled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
from sqlalchemy.exc import SQLAlchemyError

from service.chain.addresses import checksum_wallet
from service.columns import utcnow
from service.database import Database, error_line
from service.delivery import checks
from service.merchant_webhooks import outbox
from service.onramp import repository
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus
from service.onramp.models import SessionRow
from service.onramp.repository import Chosen
from service.onramp.stripe_answer import apply_stripe_session
from service.onramp.stripe_client import StripeOnramp
from service.onramp.stripe_shape import malformed, shown
from service.onramp.updates import (
    APPLIED,
    ONRAMP_OBJECT,
    OnrampUpdate,
    apply_update,
    money,
    our_session_id,
    update_from_stripe,
)
from service.sql import RollBack, SqlTransaction


@dataclass(frozen=True)
class SessionImported:
    session_id: str | None
    stripe_session_id: str
    status: str
    # imported, updated, present, not_ours (no id of ours in its metadata), other_mode
    # (live news for a test key, or the reverse), duplicate (a second Stripe session
    # naming one of ours), or failed
    outcome: str
    error: str | None = None


async def import_sessions(
    database: Database,
    stripe: StripeOnramp,
    *,
    since: datetime,
    until: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> list[SessionImported]:
    results: list[SessionImported] = []
    async for page in stripe.sessions_created(since, until):
        refusals = [_refusal(obj, stripe.livemode) for obj in page]
        sound = [obj for obj, refused in zip(page, refusals, strict=True) if refused is None]
        ids = [our_id for obj in sound if (our_id := our_session_id(obj))]
        held = {row.id: row for row in await _rows(database, ids)}
        held_at_stripe = await repository.stripe_ids_held(database, [obj["id"] for obj in sound])
        for obj, refused in zip(page, refusals, strict=True):
            if refused is not None:
                results.append(refused)
                continue
            mine = held.get(our_session_id(obj) or "")
            taken = obj["id"] in held_at_stripe
            results.append(await _import_alone(database, obj, mine, taken, dry_run))
        if progress is not None:
            progress(len(results), None)  # Stripe's list gives no total
    return results


def _refusal(obj: Any, livemode: bool) -> SessionImported | None:
    """What becomes of a session without a write: another integration's, the other
    mode's, or one too malformed to store (refused here, before the database sees it)."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        our_id, stripe_id, status = our_session_id(obj), obj["id"], shown(obj.get("status"))
        if our_id is None:
            return SessionImported(None, stripe_id, status or "", "not_ours")
        if obj.get("livemode") is (not livemode):
            return SessionImported(our_id, stripe_id, status or "", "other_mode")
    reason = malformed(obj)
    if reason is None:
        return None
    fields = obj if isinstance(obj, dict) else {}
    our_id = our_session_id(fields)
    stripe_id, status = shown(fields.get("id")) or "", shown(fields.get("status")) or ""
    return SessionImported(our_id, stripe_id, status, "failed", f"malformed: {reason}")


async def _import_alone(
    database: Database,
    obj: dict[str, Any],
    mine: SessionRow | None,
    stripe_id_taken: bool,
    dry_run: bool,
) -> SessionImported:
    """One session in transactions of its own: a database error refusing it is its
    `failed`, and the run goes on (an unreachable database still ends the run)."""
    our_id, stripe_id, status = our_session_id(obj), obj["id"], obj["status"]
    assert our_id is not None  # _refusal reported the others
    try:
        return await _import_one(database, obj, our_id, mine, stripe_id_taken, dry_run)
    except (psycopg.Error, SQLAlchemyError) as error:
        return SessionImported(our_id, stripe_id, status, "failed", error_line(error))


async def _rows(database: Database, session_ids: list[str]) -> list[SessionRow]:
    chosen = Chosen(ids=tuple(session_ids), unfinished_too=True)
    return await repository.list_sessions(database, chosen, limit=None) if session_ids else []


async def _import_one(
    database: Database,
    obj: dict[str, Any],
    our_id: str,
    mine: SessionRow | None,
    stripe_id_taken: bool,
    dry_run: bool,
) -> SessionImported:
    stripe_id, status = str(obj["id"]), str(obj.get("status"))
    if mine is None and not stripe_id_taken:
        return await _store(database, obj, our_id, dry_run)
    if mine is not None and mine.stripe_session_id not in (None, stripe_id):
        # A second Stripe session naming one of ours: ours keeps the one it holds.
        return SessionImported(our_id, stripe_id, status, "duplicate")
    update = update_from_stripe(obj)
    if update is None:  # pragma: no cover - the list returns onramp sessions only
        return SessionImported(our_id, stripe_id, status, "failed", "not a session")
    if mine is not None and mine.stripe_session_id is not None and not is_behind(mine, update):
        return SessionImported(our_id, stripe_id, status, "present")
    async with database.transaction() as sql:
        finished = mine is not None and await _finish(sql, mine, obj)
        applied = await apply_update(sql, update, utcnow(), checks, outbox)
        if dry_run:
            raise RollBack
    changed = finished or applied.outcome == APPLIED
    session_id = applied.onramp_session_id or our_id
    return SessionImported(session_id, stripe_id, status, "updated" if changed else "present")


async def _store(
    database: Database, obj: dict[str, Any], our_id: str, dry_run: bool
) -> SessionImported:
    stripe_id, status = str(obj["id"]), str(obj.get("status"))
    try:
        row = session_from_stripe(obj, our_id)
    except ValueError as error:
        return SessionImported(our_id, stripe_id, status, "failed", str(error))
    async with database.transaction() as sql:
        stored = await repository.insert_if_absent(sql, row)
        if stored and row.status == LIFECYCLE.fulfilled:
            await checks.schedule_check(sql, row.id, utcnow())
        if dry_run:
            raise RollBack
    outcome = "imported" if stored else "present"  # present: made meanwhile, by its create call
    return SessionImported(our_id, stripe_id, status, outcome)


async def _finish(sql: SqlTransaction, mine: SessionRow, obj: dict[str, Any]) -> bool:
    """A session whose create call never stored Stripe's answer (a crash, or a restore
    in between) gets it now, as that call would have stored it; its status then moves
    by the same compare-and-set as a webhook."""
    if mine.stripe_session_id is not None:
        return False
    answered = msgspec.structs.replace(mine)
    apply_stripe_session(answered, obj)
    answered.status, answered.transaction_hash = LIFECYCLE.initial, None
    return await repository.finish(sql, answered)


def is_behind(mine: SessionRow, update: OnrampUpdate) -> bool:
    """Whether Stripe's word would change the stored session: a later status, or
    fulfilment figures or fees it does not have yet."""
    if LIFECYCLE.advance(mine.status, update.status) != mine.status:
        return True
    missing = [
        (update.network_fee or update.transaction_fee)
        and mine.network_fee_amount is None
        and mine.transaction_fee_amount is None,
    ]
    if mine.status == LIFECYCLE.fulfilled:
        missing += [
            update.transaction_id and mine.transaction_hash is None,
            update.destination_amount and mine.destination_amount is None,
        ]
    return any(missing)


def session_from_stripe(obj: dict[str, Any], our_id: str) -> SessionRow:
    """The session row a Stripe onramp session stands for, under our id; ValueError
    when the object lacks what a session needs (a wallet, a known status, currencies)."""
    if obj.get("object") != ONRAMP_OBJECT:
        raise ValueError("not an onramp session")
    status = obj.get("status")
    if not isinstance(status, str) or not LIFECYCLE.is_status(status):
        raise ValueError(f"unknown status {status!r}")
    details = obj.get("transaction_details")
    details = details if isinstance(details, dict) else {}
    wallet = _wallet(details)
    currencies = [details.get(n) for n in ("source_currency", "destination_currency")]
    network = details.get("destination_network")
    if not all(isinstance(c, str) and c for c in [*currencies, network]):
        raise ValueError("no currencies or network")
    update = update_from_stripe(obj)
    assert update is not None
    fulfilled = status == LIFECYCLE.fulfilled
    created = obj.get("created")
    return SessionRow(
        wallet_address=wallet,
        source_amount=money(details.get("source_amount")),
        source_currency=str(currencies[0]),
        destination_currency=str(currencies[1]),
        destination_network=str(network),
        id=our_id,
        stripe_session_id=update.stripe_session_id,
        client_secret=obj.get("client_secret")
        if isinstance(obj.get("client_secret"), str)
        else None,
        livemode=update.livemode,
        redirect_url=obj.get("redirect_url") if isinstance(obj.get("redirect_url"), str) else None,
        status=status,
        destination_amount=update.destination_amount,
        transaction_hash=update.transaction_id if fulfilled else None,
        delivery_status=DeliveryStatus.PENDING if fulfilled else DeliveryStatus.NOT_STARTED,
        network_fee_amount=update.network_fee,
        transaction_fee_amount=update.transaction_fee,
        created_at=(datetime.fromtimestamp(created, UTC) if isinstance(created, int) else utcnow()),
    )


def _wallet(details: dict[str, Any]) -> str:
    addresses = details.get("wallet_addresses")
    candidates = [details.get("wallet_address")]
    candidates += list(addresses.values()) if isinstance(addresses, dict) else []
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return checksum_wallet(candidate)
    raise ValueError("no wallet address")
