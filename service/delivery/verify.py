"""Deciding one session's delivery from what its chain shows now.

The direct path judges the transaction Stripe named; without one, the worker searches
the token's `Transfer` logs to the wallet for a delivery no other session holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from service.chain.destinations import Destination
from service.chain.rpc import ChainRpc
from service.database import Database
from service.delivery import chain, ledger, rules
from service.delivery.checks import ClaimedCheck
from service.delivery.decisions import SEARCH_AGAIN, Checked, Credit, with_finality
from service.onramp.deliveries import SessionToDeliver

Seen = dict[str, chain.Observation]


@dataclass(frozen=True)
class Verifier:
    """What deciding a delivery needs besides the session: its chain and the ledger."""

    destination: Destination
    rpc: ChainRpc
    database: Database
    tolerance: Decimal


async def verify_delivery(
    verifier: Verifier, session: SessionToDeliver, check: ClaimedCheck, seen: Seen
) -> Checked:
    destination = verifier.destination
    if session.destination_amount is None:
        return Checked("pending", "Stripe has not reported the delivered amount yet")
    try:
        expected = rules.to_units(session.destination_amount, destination.decimals)
        tolerance = rules.to_units(str(verifier.tolerance), destination.decimals)
    except ValueError as error:
        return Checked("failed", str(error), credits=())
    tx_hash, search_from = session.transaction_hash, check.search_from_block
    found_by_search = tx_hash is None
    if tx_hash is None:
        tx_hash, search_from = await _search(verifier, session, expected, tolerance, search_from)
        if tx_hash is None:
            return Checked("pending", SEARCH_AGAIN, search_from_block=search_from, unseen=True)
    if not looks_like_hash(tx_hash):
        return Checked("failed", f"{tx_hash!r} is not a transaction hash", credits=())
    observed = seen.get(tx_hash) or await chain.observe_transaction(verifier.rpc, tx_hash)
    if not observed.found:
        return Checked(
            "pending",
            "the transaction is not on the chain (yet)",
            search_from_block=search_from,
            unseen=True,
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
    result = Checked(
        verdict.status,
        verdict.detail,
        verdict.delivered_amount,
        observed.confirmations,
        observed.block_number,
        observed.block_hash,
        tx_hash if found_by_search else None,
        search_from,
        credits=credits,
        found_by_search=found_by_search,
    )
    return with_finality(result, destination.finality_depth)


async def _search(
    verifier: Verifier,
    session: SessionToDeliver,
    expected: int,
    tolerance: int,
    search_from: int | None,
) -> tuple[str | None, int]:
    """The oldest transaction since the session began that delivers the expected amount
    (within the tolerance) to the wallet from somebody else, and whose transfers no
    other session holds."""
    rpc, token = verifier.rpc, verifier.destination.token_address
    if search_from is None:
        search_from = await chain.first_block_at(rpc, int(session.created_at.timestamp()))
    by_transaction: dict[str, list[rules.Transfer]] = {}
    for tx_hash, transfer in await chain.transfers_to(
        rpc, token, session.wallet_address, search_from
    ):
        by_transaction.setdefault(tx_hash, []).append(transfer)
    candidates = {}
    for tx_hash, transfers in by_transaction.items():
        delivered = rules.delivered_to(transfers, token, session.wallet_address)
        amount = sum(t.value for t in delivered)
        if delivered and rules.within_tolerance(amount, expected, tolerance):
            chain_id = verifier.destination.chain_id
            candidates[tx_hash] = [Credit(chain_id, tx_hash, t.log_index) for t in delivered]
    if not candidates:
        return None, search_from
    async with verifier.database.transaction() as sql:
        held = await ledger.holders(sql, [c for credits in candidates.values() for c in credits])
    for tx_hash, credits in candidates.items():
        if all(held.get(c, session.id) == session.id for c in credits):
            return tx_hash, search_from
    return None, search_from


def looks_like_hash(value: str) -> bool:
    """0x and 64 hex digits, in lower case as the service stores them."""
    return (
        len(value) == 66
        and value.startswith("0x")
        and all(c in "0123456789abcdef" for c in value[2:])
    )
