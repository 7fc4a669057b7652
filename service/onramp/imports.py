"""Bringing back sessions that exist at Stripe but not here: after a database restore,
the sessions created since the backup (`onramp sessions import`).

Stripe keeps our id in each session's `metadata.onramp_session_id`, so a lost session
comes back under its own id, which its owner's dApp still holds. A session is stored
with one INSERT that does nothing when its id or its Stripe id is taken, so an import
never duplicates and can run again, alongside live traffic; a session that is here but
behind Stripe is brought forward as a replay would (never back). A fulfilled session
comes back with its delivery check scheduled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.chain.addresses import checksum_wallet
from service.columns import utcnow
from service.database import Database
from service.delivery.checks import schedule_check
from service.onramp import repository, state
from service.onramp.models import SessionRow
from service.onramp.rules import is_session_id
from service.onramp.stripe_client import StripeOnramp
from service.onramp.updates import ONRAMP_OBJECT, apply_update, money, update_from_stripe
from service.sql import RollBack


@dataclass(frozen=True)
class SessionImported:
    session_id: str | None
    stripe_session_id: str
    status: str
    # imported, updated, present, not_ours (no id of ours in its metadata), other_mode
    # (live news for a test key, or the reverse), or failed
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
        ids = [_our_id(obj) or "" for obj in page]
        present, present_at_stripe = await repository.known(
            database, [i for i in ids if i], [obj["id"] for obj in page]
        )
        for obj, our_id in zip(page, ids, strict=True):
            if our_id in present or obj["id"] in present_at_stripe:
                results.append(await _bring_forward(database, obj, our_id, dry_run))
            else:
                results.append(await _import_one(database, stripe, obj, our_id, dry_run))
        if progress is not None:
            progress(len(results), None)  # Stripe's list gives no total
    return results


async def _import_one(
    database: Database, stripe: StripeOnramp, obj: dict[str, Any], our_id: str, dry_run: bool
) -> SessionImported:
    stripe_id, status = str(obj["id"]), str(obj.get("status"))
    if not our_id:
        return SessionImported(None, stripe_id, status, "not_ours")
    if obj.get("livemode") is not stripe.livemode:
        return SessionImported(our_id, stripe_id, status, "other_mode")
    try:
        row = session_from_stripe(obj, our_id)
    except ValueError as error:
        return SessionImported(our_id, stripe_id, status, "failed", str(error))
    async with database.transaction() as sql:
        stored = await repository.insert_if_absent(sql, row)
        if stored and row.status == "fulfillment_complete":
            await schedule_check(sql, row.id, utcnow())
        if dry_run:
            raise RollBack
    if not stored:  # made meanwhile, by a webhook's create call racing this import
        return await _bring_forward(database, obj, our_id, dry_run)
    return SessionImported(our_id, stripe_id, status, "imported")


async def _bring_forward(
    database: Database, obj: dict[str, Any], our_id: str, dry_run: bool
) -> SessionImported:
    stripe_id, status = str(obj["id"]), str(obj.get("status"))
    update = update_from_stripe(obj)
    if update is None:  # pragma: no cover - the list returns onramp sessions only
        return SessionImported(our_id or None, stripe_id, status, "failed", "not a session")
    async with database.transaction() as sql:
        applied = await apply_update(sql, update, utcnow())
        if dry_run:
            raise RollBack
    outcome = "updated" if applied.outcome == "applied" else "present"
    return SessionImported(applied.onramp_session_id or our_id or None, stripe_id, status, outcome)


def _our_id(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get("onramp_session_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and is_session_id(value) else None


def session_from_stripe(obj: dict[str, Any], our_id: str) -> SessionRow:
    """The session row a Stripe onramp session stands for, under our id; ValueError
    when the object lacks what a session needs (a wallet, a known status, currencies)."""
    if obj.get("object") != ONRAMP_OBJECT:
        raise ValueError("not an onramp session")
    status = obj.get("status")
    if status not in state.STATUSES:
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
    fulfilled = status == "fulfillment_complete"
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
        delivery_status="pending" if fulfilled else "not_started",
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
