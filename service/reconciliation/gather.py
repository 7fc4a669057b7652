"""Gathering the three accounts of a range of sessions: ours (one read, from the read
replica when there is one), Stripe's (its list, the range cut into windows listed side
by side) and the chain's (the delivery verdicts the worker recorded, and when pending
checks started their time-out). Then each session is compared (drift.py).

A session created near an edge of the range may fall on one side in our clock and on
the other in Stripe's; one side's leftovers are looked up on the other by id before
they count as missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from service.database import Database
from service.delivery.checks import timeouts_started
from service.onramp import repository
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import SessionRow
from service.onramp.repository import Chosen
from service.onramp.stripe_client import StripeOnramp, StripeRefused
from service.onramp.stripe_shape import created_day, malformed, shown
from service.onramp.updates import money, our_session_id
from service.reconciliation.drift import STRIPE_MALFORMED, compare, reused_transfers

LOOKUP_BATCH = 500


@dataclass
class Compared:
    """One session's three accounts side by side; amounts are Stripe's where it states
    them (it holds the money), the delivery is the chain's verdict."""

    session_id: str | None
    stripe_session_id: str | None
    day: str
    status: str | None = None
    stripe_status: str | None = None
    source_amount: str | None = None
    source_currency: str | None = None
    network_fee: str | None = None
    transaction_fee: str | None = None
    destination_amount: str | None = None
    destination_currency: str | None = None
    delivered_amount: str | None = None
    delivery: str | None = None
    drift: list[str] = field(default_factory=list)
    # Why Stripe's object could not be compared (`stripe_malformed`).
    detail: str | None = None


@dataclass(frozen=True)
class Malformed:
    """One of Stripe's objects that is not a session this service can read: why, and
    what of it a report can repeat (`stripe_shape.shown`)."""

    reason: str
    session_id: str | None  # the session of ours it names, if it names one
    stripe_session_id: str | None
    day: str | None

    @classmethod
    def of(cls, obj: Any, reason: str) -> Malformed:
        fields = obj if isinstance(obj, dict) else {}
        return cls(reason, our_session_id(fields), shown(fields.get("id")), created_day(fields))


async def reconcile(
    database: Database,
    stripe: StripeOnramp,
    *,
    since: datetime,
    until: datetime,
    delivery_timeout: timedelta,
    concurrency: int = 8,
    progress: Callable[[int, int | None], None] | None = None,
) -> list[Compared]:
    now = datetime.now(UTC)
    chosen = Chosen(created_since=since, created_before=until)
    every = await repository.list_sessions(database, chosen, limit=None, newest_first=False)
    ours = [s for s in every if bool(s.livemode) == stripe.livemode]  # the other mode is unseen
    listed = await _listed(stripe, since, until, concurrency, progress)
    theirs, malformed_ones = _sorted_out(listed, stripe.livemode)
    pairs = await _paired(database, stripe, ours, theirs, malformed_ones, concurrency)
    fulfilled = [o.id for o, _ in pairs if o is not None and o.status == LIFECYCLE.fulfilled]
    started = await timeouts_started(database, fulfilled)
    reused = reused_transfers(o for o, _ in pairs if o is not None)
    compared = []
    for mine, stripes in pairs:
        if isinstance(stripes, Malformed):
            compared.append(_unreadable(mine, stripes, since))
            continue
        if _names_another(mine, stripes):
            # A second Stripe session for one of ours: its figures are Stripe's alone.
            duplicate = _side_by_side(None, stripes, ["duplicate_at_stripe"])
            compared.append(duplicate)
            continue
        drift = compare(
            mine,
            stripes,
            delivery_started=started.get(mine.id) if mine else None,
            now=now,
            delivery_timeout=delivery_timeout,
        )
        if mine is not None and mine.id in reused and "transfer_reused" not in drift:
            drift.append("transfer_reused")
        compared.append(_side_by_side(mine, stripes, drift))
    compared.sort(key=lambda c: (c.day, c.session_id or "", c.stripe_session_id or ""))
    return compared


Pair = tuple[SessionRow | None, dict[str, Any] | Malformed | None]


def _sorted_out(listed: list[Any], livemode: bool) -> tuple[list[dict[str, Any]], list[Malformed]]:
    """Stripe's sessions of ours in the key's mode, and those of ours that cannot be read
    as sessions. Another integration's sessions and the other mode's are left out; an
    item that is not even an object, whose no one can say, is reported with ours."""
    sound: list[dict[str, Any]] = []
    unreadable: list[Malformed] = []
    for obj in listed:
        if isinstance(obj, dict) and (
            our_session_id(obj) is None or obj.get("livemode") is (not livemode)
        ):
            continue
        reason = malformed(obj)
        if reason is None:
            sound.append(obj)
        else:
            unreadable.append(Malformed.of(obj, reason))
    return sound, unreadable


def _names_another(mine: SessionRow | None, theirs: dict[str, Any] | None) -> bool:
    """Stripe's session names ours in its metadata, and ours holds another Stripe id."""
    if mine is None or theirs is None or mine.stripe_session_id is None:
        return False
    return bool(mine.stripe_session_id != theirs["id"])


async def _paired(
    database: Database,
    stripe: StripeOnramp,
    ours: list[SessionRow],
    theirs: list[dict[str, Any]],
    unreadable: list[Malformed],
    concurrency: int,
) -> list[Pair]:
    """Each of Stripe's sessions with ours (found by Stripe's id, else by our id), and
    ours that Stripe's list left out, each with what Stripe says of it by id. A session
    an unreadable object names is paired with that object, and not asked for again."""
    by_stripe_id = {s.stripe_session_id: s for s in ours}
    by_id = {s.id: s for s in ours}
    unmatched = [
        our_session_id(s)
        for s in theirs
        if s["id"] not in by_stripe_id and our_session_id(s) not in by_id
    ]
    named = {m.session_id for m in unreadable if m.session_id is not None}
    for found in await _read_by_id(database, [*unmatched, *(named - by_id.keys())]):
        by_stripe_id.setdefault(found.stripe_session_id, found)
        by_id.setdefault(found.id, found)
    listed = {s["id"] for s in theirs}
    leftovers = [s for s in ours if s.stripe_session_id not in listed and s.id not in named]
    pairs: list[Pair] = [
        (by_stripe_id.get(s["id"]) or by_id.get(our_session_id(s) or ""), s) for s in theirs
    ]
    pairs += await _retrieved(stripe, leftovers, concurrency)
    pairs += [(by_id.get(m.session_id or ""), m) for m in unreadable]
    paired = {mine.id for mine, _ in pairs if mine is not None}
    pairs += [(s, None) for s in ours if s.id not in paired]
    return pairs


async def _listed(
    stripe: StripeOnramp,
    since: datetime,
    until: datetime,
    concurrency: int,
    progress: Callable[[int, int | None], None] | None,
) -> list[Any]:
    """Stripe's sessions in the range, in windows of at most a day listed side by side:
    one cursor walking a month of sessions a page at a time would take minutes."""
    gate = asyncio.Semaphore(concurrency)
    sessions: list[Any] = []

    async def window(start: datetime, end: datetime) -> None:
        async with gate:
            async for page in stripe.sessions_created(start, end):
                sessions.extend(page)
                if progress is not None:
                    progress(len(sessions), None)

    await asyncio.gather(*(window(start, end) for start, end in _windows(since, until)))
    return sessions


def _windows(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    start = since
    while start < until:
        end = min(start + timedelta(days=1), until)
        yield start, end
        start = end


async def _read_by_id(database: Database, ids: list[str | None]) -> list[SessionRow]:
    wanted = [i for i in ids if i is not None]
    found: list[SessionRow] = []
    for at in range(0, len(wanted), LOOKUP_BATCH):
        chosen = Chosen(ids=tuple(wanted[at : at + LOOKUP_BATCH]), unfinished_too=True)
        found += await repository.list_sessions(database, chosen, limit=None)
    return found


async def _retrieved(
    stripe: StripeOnramp, sessions: list[SessionRow], concurrency: int
) -> list[Pair]:
    """Our sessions that Stripe's list of the range left out, each with what Stripe
    answers when asked for it by id; those Stripe does not know stay unmatched (missing
    at Stripe)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(session: SessionRow) -> Pair | None:
        async with gate:
            try:
                found: Any = await stripe.retrieve_session(session.stripe_session_id or "")
            except StripeRefused as error:
                if error.extra.get("stripeCode") == "resource_missing":
                    return None
                raise
        reason = malformed(found)
        return session, found if reason is None else Malformed.of(found, reason)

    found = await asyncio.gather(*(one(session) for session in sessions))
    return [pair for pair in found if pair is not None]


def _side_by_side(
    ours: SessionRow | None, theirs: dict[str, Any] | None, drift: list[str]
) -> Compared:
    stated = _stated(theirs) if theirs is not None else {}
    held = _held(ours) if ours is not None else {}
    figures = {name: stated.get(name) or held.get(name) for name in {*stated, *held}}
    return Compared(
        session_id=ours.id if ours is not None else our_session_id(theirs or {}),
        stripe_session_id=figures["stripe_session_id"],
        day=str(figures["day"]),
        status=ours.status if ours is not None else None,
        stripe_status=(theirs or {}).get("status"),
        source_amount=figures["source_amount"],
        source_currency=figures["source_currency"],
        network_fee=figures["network_fee"],
        transaction_fee=figures["transaction_fee"],
        destination_amount=figures["destination_amount"],
        destination_currency=figures["destination_currency"],
        delivered_amount=ours.delivered_amount if ours is not None else None,
        delivery=ours.delivery_status if ours is not None else None,
        drift=drift,
    )


def _unreadable(ours: SessionRow | None, theirs: Malformed, since: datetime) -> Compared:
    """The row of an object Stripe sent that is not a session: our figures where we
    hold the session, none of Stripe's. With neither a session here nor a time of
    Stripe's, it counts on the range's first day."""
    if ours is not None:
        row = _side_by_side(ours, None, [STRIPE_MALFORMED])
        stripe_id = theirs.stripe_session_id or row.stripe_session_id
        return replace(row, stripe_session_id=stripe_id, detail=theirs.reason)
    return Compared(
        session_id=theirs.session_id,
        stripe_session_id=theirs.stripe_session_id,
        day=theirs.day or since.date().isoformat(),
        drift=[STRIPE_MALFORMED],
        detail=theirs.reason,
    )


def _stated(theirs: dict[str, Any]) -> dict[str, Any]:
    details = theirs.get("transaction_details")
    details = details if isinstance(details, dict) else {}
    fees = details.get("fees")
    fees = fees if isinstance(fees, dict) else {}
    return {
        "stripe_session_id": theirs.get("id"),
        "day": created_day(theirs),
        "source_amount": money(details.get("source_amount")),
        "source_currency": details.get("source_currency"),
        "network_fee": money(fees.get("network_fee_amount")),
        "transaction_fee": money(fees.get("transaction_fee_amount")),
        "destination_amount": money(details.get("destination_amount")),
        "destination_currency": details.get("destination_currency"),
    }


def _held(ours: SessionRow) -> dict[str, Any]:
    return {
        "stripe_session_id": ours.stripe_session_id,
        "day": ours.created_at.date().isoformat(),
        "source_amount": ours.source_amount,
        "source_currency": ours.source_currency,
        "network_fee": ours.network_fee_amount,
        "transaction_fee": ours.transaction_fee_amount,
        "destination_amount": ours.destination_amount,
        "destination_currency": ours.destination_currency,
    }
