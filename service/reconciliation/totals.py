"""Totals by day and status, as finance reads a range: how many sessions, how much the
cards paid, Stripe's fees and what reached wallets. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from service.reconciliation.gather import Compared


@dataclass
class DayTotal:
    """Sums in each session's own currencies: card money in the source currency, tokens
    in the destination currency (a day and status has a row per pair)."""

    day: str
    status: str
    source_currency: str
    destination_currency: str
    sessions: int = 0
    source_amount: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    delivered_amount: Decimal = Decimal(0)
    drifted: int = 0


def totals(compared: Iterable[Compared]) -> list[DayTotal]:
    rows: dict[tuple[str, str, str, str], DayTotal] = {}
    for session in compared:
        key = (
            session.day,
            session.stripe_status or session.status or "unknown",
            session.source_currency or "",
            session.destination_currency or "",
        )
        row = rows.get(key) or rows.setdefault(key, DayTotal(*key))
        row.sessions += 1
        row.source_amount += _decimal(session.source_amount)
        row.fees += _decimal(session.network_fee) + _decimal(session.transaction_fee)
        row.delivered_amount += _decimal(session.delivered_amount)
        row.drifted += 1 if session.drift else 0
    return [rows[key] for key in sorted(rows)]


def _decimal(value: str | None) -> Decimal:
    try:
        return Decimal(value) if value else Decimal(0)
    except InvalidOperation:
        return Decimal(0)
