"""The pure rules of a delivery round: when a check is over, when it is due again, and
which session a transfer proves when several want it.

No I/O here: the worker feeds these what the chain and the database said.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus
from service.onramp.models import DeliveryVerdict

FIRST_PAUSE_SECONDS = 2.0
LONGEST_PAUSE_SECONDS = 300.0
SEARCH_AGAIN = "no matching transfer to the wallet yet"


@dataclass(frozen=True, order=True)
class Credit:
    """One `Transfer` log on one chain: the unit the ledger credits to one session."""

    chain_id: int
    transaction_hash: str
    log_index: int

    def describe(self) -> str:
        return f"{self.transaction_hash} (log {self.log_index})"


@dataclass(frozen=True)
class Checked:
    """One check's result, as recorded on the session."""

    status: str
    detail: str
    delivered_amount: str | None = None
    confirmations: int = 0
    block_number: int | None = None
    block_hash: str | None = None
    transaction_hash: str | None = None
    search_from_block: int | None = None
    # The transaction (or a matching transfer) is not on the chain: only this may time out.
    unseen: bool = False
    # The transfers this result attributes to the session: None keeps what the ledger
    # holds for it (nothing new is known), () gives it all up.
    credits: tuple[Credit, ...] | None = None
    # The session named no transaction; the worker found this one.
    found_by_search: bool = False
    # Look again later even though the status is a decision: a confirmed block not yet
    # final for its network, or a decision kept while no node answers.
    check_again: bool = False

    @property
    def finished(self) -> bool:
        """No further check: decided for good."""
        return self.status in LIFECYCLE.decided_deliveries and not self.check_again


def next_due(now: datetime, attempts: int) -> datetime:
    """Back-off for a check that could not decide: 2 s, 4 s, 8 s, … up to 5 minutes."""
    pause = FIRST_PAUSE_SECONDS * 2 ** max(0, attempts - 1)
    return now + timedelta(seconds=min(LONGEST_PAUSE_SECONDS, pause))


def apply_time_out(
    result: Checked, started: datetime, now: datetime, seconds: int, *, seen_before: bool
) -> Checked:
    """A transaction (or transfer) still unseen `seconds` after the check started has
    failed. One that was on chain before and went away (a reorganisation, a lagging
    node) waits to come back however long it takes, as does anything seen on chain."""
    if result.status != DeliveryStatus.PENDING or not result.unseen or seen_before:
        return result
    if now - started <= timedelta(seconds=seconds):
        return result
    return replace(
        result,
        status=DeliveryStatus.FAILED,
        detail=f"not decided within {seconds} s: {result.detail}",
        credits=(),
    )


def with_finality(result: Checked, finality_depth: int) -> Checked:
    """A verdict read from a receipt stays under watch until its block is final for its
    network: a reorganisation can still remove the transfer, or re-run the transaction
    to another end."""
    if result.status == DeliveryStatus.PENDING or result.confirmations >= finality_depth:
        return result
    return replace(
        result,
        check_again=True,
        detail=f"{result.detail}; watched for reorganisation until {finality_depth}",
    )


@dataclass(frozen=True)
class Holder:
    """Who the ledger credits a transfer to, and whether that session only found it: the
    rest of a `delivery_credits` row, by column name."""

    onramp_session_id: str
    found_by_search: bool


def credit_order(
    results: dict[str, Checked], created: dict[str, datetime], incumbents: dict[Credit, Holder]
) -> list[tuple[Credit, str]]:
    """Every (transfer, session) this round would credit, in the order the ledger takes
    them: by transfer, so that concurrent rounds lock rows in one order; for one
    transfer, a session that named it before one that found it, then the session that
    held it already, then the older session."""
    proposals = [
        (credit, session_id)
        for session_id, result in results.items()
        for credit in result.credits or ()
    ]

    def precedence(proposal: tuple[Credit, str]) -> tuple[Credit, bool, bool, datetime, str]:
        credit, session_id = proposal
        incumbent = incumbents.get(credit)
        held = incumbent is not None and incumbent.onramp_session_id == session_id
        return (
            credit,
            results[session_id].found_by_search,
            not held,
            created[session_id],
            session_id,
        )

    return sorted(proposals, key=precedence)


def taken_from_searches(
    results: dict[str, Checked], incumbents: dict[Credit, Holder]
) -> dict[Credit, tuple[str, str]]:
    """Transfers that a session of this round names (Stripe's word) while another
    session, outside the round, holds them only because it found them: credit -> (the
    naming session, the finder). The naming session takes them over."""
    taken: dict[Credit, tuple[str, str]] = {}
    for session_id, result in sorted(results.items()):
        if result.found_by_search:
            continue
        for credit in result.credits or ():
            holder = incumbents.get(credit)
            if (
                holder is not None
                and holder.found_by_search
                and holder.onramp_session_id != session_id
                and holder.onramp_session_id not in results
            ):
                taken.setdefault(credit, (session_id, holder.onramp_session_id))
    return taken


def one_session_per_transfer(
    results: dict[str, Checked], holders: dict[Credit, str]
) -> dict[str, Checked]:
    """Results as the ledger allows them: a session whose transfer is held by another
    session is a mismatch naming it if it named that transfer itself, or searches
    again if it had only found it."""
    settled = dict(results)
    for session_id, result in results.items():
        taken = [
            (credit, holders[credit])
            for credit in result.credits or ()
            if holders.get(credit, session_id) != session_id
        ]
        if not taken:
            continue
        credit, holder = taken[0]
        if result.found_by_search:
            settled[session_id] = search_again(result.search_from_block)
        else:
            settled[session_id] = Checked(
                DeliveryStatus.MISMATCH,
                f"transfer {credit.describe()} already proves session {holder}",
                delivered_amount="0",
                confirmations=result.confirmations,
                block_number=result.block_number,
                block_hash=result.block_hash,
                transaction_hash=result.transaction_hash,
                search_from_block=result.search_from_block,
                credits=(),
                check_again=result.check_again,
            )
    return settled


def search_again(search_from_block: int | None, detail: str = SEARCH_AGAIN) -> Checked:
    """A session that found a transfer another session holds looks for another one."""
    return Checked(
        DeliveryStatus.PENDING,
        detail,
        search_from_block=search_from_block,
        unseen=True,
        credits=(),
        found_by_search=True,
    )


def verdict_of(session_id: str, result: Checked) -> DeliveryVerdict:
    return DeliveryVerdict(
        session_id,
        result.status,
        result.detail,
        result.delivered_amount,
        result.confirmations,
        result.block_number,
        result.block_hash,
    )


def taken_over(finder: str, naming: str) -> DeliveryVerdict:
    """The verdict of a session whose found transfer went to the session it paid."""
    detail = f"the transfer it found pays session {naming} (Stripe's word); searching again"
    return DeliveryVerdict(finder, DeliveryStatus.PENDING, detail, "0", 0, None, None)
