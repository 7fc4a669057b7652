"""The credit ledger: which session each on-chain transfer proves, at most one, ever.

Credits are written in the transaction that records the verdict. The insert is
`ON CONFLICT DO NOTHING` in a fixed order, and the holders are read back afterwards: on
PostgreSQL a second writer of the same transfer waits for the first to commit and then
sees it, so two workers, replicas or an operator's re-check racing for one transfer
cannot both win.
"""

from __future__ import annotations

from datetime import datetime

from service.delivery.decisions import Credit, Holder
from service.sql import Sql, SqlTransaction, with_list

_CREDIT = Sql(
    "INSERT INTO delivery_credits (chain_id, transaction_hash, log_index,"
    " onramp_session_id, found_by_search, credited_at)"
    " VALUES (:chain_id, :transaction_hash, :log_index, :session_id, :found, :now)"
    " ON CONFLICT (chain_id, transaction_hash, log_index) DO NOTHING",
    datetimes=("now",),
)
_HOLDERS = (
    "SELECT chain_id, transaction_hash, log_index, onramp_session_id, found_by_search"
    " FROM delivery_credits WHERE transaction_hash IN (hashes)"
)
_TAKE_OVER = Sql(
    "UPDATE delivery_credits SET onramp_session_id = :session_id, found_by_search = :found,"
    " credited_at = :now WHERE chain_id = :chain_id AND transaction_hash = :transaction_hash"
    " AND log_index = :log_index AND onramp_session_id = :finder AND found_by_search",
    datetimes=("now",),
)
_RELEASE = "DELETE FROM delivery_credits WHERE onramp_session_id IN (ids)"


async def credit(
    sql: SqlTransaction, proposals: list[tuple[Credit, str, bool]], now: datetime
) -> None:
    """Credit each transfer to its session, in the order given, unless another session
    holds it already; `holders` says afterwards who has each."""
    await sql.execute_many(
        _CREDIT,
        [
            {
                "chain_id": c.chain_id,
                "transaction_hash": c.transaction_hash,
                "log_index": c.log_index,
                "session_id": session_id,
                "found": found,
                "now": now,
            }
            for c, session_id, found in proposals
        ],
    )


async def take_over(
    sql: SqlTransaction, taken: dict[Credit, tuple[str, str]], now: datetime
) -> None:
    """Move transfers from the sessions that only found them to the sessions Stripe
    says they paid: credit -> (naming session, finder)."""
    await sql.execute_many(
        _TAKE_OVER,
        [
            {
                "chain_id": c.chain_id,
                "transaction_hash": c.transaction_hash,
                "log_index": c.log_index,
                "session_id": naming,
                "finder": finder,
                "found": False,
                "now": now,
            }
            for c, (naming, finder) in sorted(taken.items())
        ],
    )


async def holders(sql: SqlTransaction, credits: list[Credit]) -> dict[Credit, Holder]:
    """Who holds each of `credits` that is held."""
    wanted = set(credits)
    if not wanted:
        return {}
    statement, params = with_list(_HOLDERS, "hashes", sorted({c.transaction_hash for c in wanted}))
    held = {}
    for row in await sql.rows(statement, params):
        key = Credit(row["chain_id"], row["transaction_hash"], row["log_index"])
        if key in wanted:
            held[key] = Holder(row["onramp_session_id"], bool(row["found_by_search"]))
    return held


async def release(sql: SqlTransaction, session_ids: list[str]) -> None:
    """Whatever these sessions held is free again."""
    if session_ids:
        statement, params = with_list(_RELEASE, "ids", sorted(session_ids))
        await sql.execute(statement, params)
