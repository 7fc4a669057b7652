"""Deciding one session's delivery from what its chain shows now.

The direct path judges the transaction Stripe named; without one, the worker searches
the token's `Transfer` logs to the wallet for a delivery no other session holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from service.chain.destinations import Destination
from service.chain.rpc import ChainRpc
from service.database import Database
from service.delivery import chain, ledger, rules
from service.delivery.checks import ClaimedCheck
from service.delivery.decisions import Checked, Credit, search_again, with_finality
from service.onramp.lifecycle import DeliveryStatus
from service.onramp.models import SessionRow

Seen = dict[str, chain.Observation]


@dataclass(frozen=True)
class Verifier:
    """What deciding a delivery needs besides the session: its chain and the ledger."""

    destination: Destination
    rpc: ChainRpc
    database: Database
    tolerance: Decimal
    # A round searches for many sessions at once; their ledger reads share a few
    # connections instead of taking the pool.
    ledger_reads: asyncio.Semaphore


async def verify_delivery(
    verifier: Verifier, session: SessionRow, check: ClaimedCheck, seen: Seen
) -> Checked:
    destination = verifier.destination
    if session.destination_amount is None:
        return Checked(DeliveryStatus.PENDING, "Stripe has not reported the delivered amount yet")
    try:
        expected = rules.to_units(session.destination_amount, destination.decimals)
    except ValueError as error:
        return Checked(DeliveryStatus.FAILED, str(error), credits=())
    tolerance = rules.floor_units(str(verifier.tolerance), destination.decimals)
    found_by_search = session.transaction_hash is None
    tx_hash = session.transaction_hash or check.found_transaction_hash
    search_from = check.search_from_block
    if tx_hash is None:
        tx_hash, search_from, seen = await _search(
            verifier, session, expected, tolerance, search_from
        )
        if tx_hash is None:
            return search_again(search_from)
    if not looks_like_hash(tx_hash):
        return Checked(DeliveryStatus.FAILED, f"{tx_hash!r} is not a transaction hash", credits=())
    observed = seen.get(tx_hash) or await chain.observe_transaction(verifier.rpc, tx_hash)
    found = tx_hash if found_by_search else None
    if not observed.found:
        return Checked(
            DeliveryStatus.PENDING,
            "the transaction is not on the chain (yet)",
            transaction_hash=found,
            search_from_block=search_from,
            unseen=True,
            found_by_search=found_by_search,
        )
    verdict = rules.judge(
        reverted=observed.reverted,
        transfers=observed.transfers,
        token=destination.token_address,
        wallet=session.wallet_address,
        expected_units=expected,
        tolerance_units=tolerance,
        decimals=destination.decimals,
        confirmations=observed.confirmations,
        required_confirmations=destination.confirmations,
    )
    credits = tuple(Credit(destination.chain_id, tx_hash, t.log_index) for t in verdict.counted)
    detail = f"{verdict.detail}; found transaction {tx_hash}" if found else verdict.detail
    result = Checked(
        verdict.status,
        detail,
        verdict.delivered_amount,
        observed.confirmations,
        observed.block_number,
        observed.block_hash,
        found,
        search_from,
        credits=credits,
        found_by_search=found_by_search,
    )
    return with_finality(result, destination.finality_depth)


async def _search(
    verifier: Verifier,
    session: SessionRow,
    expected: int,
    tolerance: int,
    search_from: int | None,
) -> tuple[str | None, int, Seen]:
    """The oldest transaction since the session began that delivers the expected amount
    (within the tolerance) to the wallet from somebody else, and whose transfers no
    other session holds; with the receipts read on the way."""
    rpc, token, wallet = verifier.rpc, verifier.destination.token_address, session.wallet_address
    if search_from is None:
        search_from = await chain.first_block_at(rpc, int(session.created_at.timestamp()))
    by_transaction: dict[str, list[rules.Transfer]] = {}
    for tx_hash, transfer in await chain.transfers_to(rpc, token, wallet, search_from):
        by_transaction.setdefault(tx_hash, []).append(transfer)
    candidates = [
        tx_hash
        for tx_hash, transfers in by_transaction.items()
        if _matches(rules.delivered_to(transfers, token, wallet), expected, tolerance)
    ]
    if not candidates:
        return None, search_from, {}
    # The ledger knows transfers by their place in the transaction: read the receipts.
    seen = await chain.observe_transactions(rpc, candidates)
    credits = {
        tx_hash: [
            Credit(verifier.destination.chain_id, tx_hash, t.log_index)
            for t in rules.delivered_to(seen[tx_hash].transfers, token, wallet)
        ]
        for tx_hash in candidates
        if seen[tx_hash].found
    }
    async with verifier.ledger_reads, verifier.database.transaction() as sql:
        held = await ledger.holders(sql, [c for found in credits.values() for c in found])
    for tx_hash, found in credits.items():
        if found and all(held[c].onramp_session_id == session.id for c in found if c in held):
            return tx_hash, search_from, seen
    return None, search_from, seen


def _matches(delivered: list[rules.Transfer], expected: int, tolerance: int) -> bool:
    amount = sum(t.value for t in delivered)
    return bool(delivered) and rules.within_tolerance(amount, expected, tolerance)


def looks_like_hash(value: str) -> bool:
    """0x and 64 hex digits, in lower case as the service stores them."""
    return (
        len(value) == 66
        and value.startswith("0x")
        and all(c in "0123456789abcdef" for c in value[2:])
    )
