"""The credit ledger: which session each on-chain transfer proves, at most one, ever.

Credits are written in the transaction that records the verdict. The insert is
`ON CONFLICT DO NOTHING` in a fixed order, and the holders are read back afterwards: on
PostgreSQL a second writer of the same transfer waits for the first to commit and then
sees it, so two workers, replicas or an operator's re-check racing for one transfer
cannot both win.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, true, update
from sqlmodel import col

from service.columns import table_of
from service.delivery.decisions import Credit, Holder
from service.delivery.models import DeliveryCredit
from service.sql import Sql, SqlTransaction, insert_into, one_of

L = DeliveryCredit
CREDITS = table_of(DeliveryCredit)
_TRANSFER = (col(L.chain_id), col(L.transaction_hash), col(L.log_index))
# A transfer's parameters: `chain`, `tx` and `log` (not the columns' names, which an
# INSERT or UPDATE keeps for itself).
_THIS_TRANSFER = (
    col(L.chain_id) == bindparam("chain"),
    col(L.transaction_hash) == bindparam("tx"),
    col(L.log_index) == bindparam("log"),
)
_CREDIT = Sql.per_dialect(
    lambda postgres: (
        insert_into(CREDITS, postgres)
        .values(
            {
                col(L.chain_id): bindparam("chain"),
                col(L.transaction_hash): bindparam("tx"),
                col(L.log_index): bindparam("log"),
                col(L.onramp_session_id): bindparam("session_id"),
                col(L.found_by_search): bindparam("found"),
                col(L.credited_at): bindparam("now"),
            }
        )
        .on_conflict_do_nothing(index_elements=list(_TRANSFER))
    )
)
_HOLDERS = Sql.per_dialect(
    lambda postgres: select(*_TRANSFER, col(L.onramp_session_id), col(L.found_by_search)).where(
        one_of(col(L.transaction_hash), "hashes", postgres)
    )
)
_TAKE_OVER = Sql(
    update(CREDITS)
    .values(
        {
            col(L.onramp_session_id): bindparam("session_id"),
            col(L.found_by_search): bindparam("found"),
            col(L.credited_at): bindparam("now"),
        }
    )
    .where(
        *_THIS_TRANSFER,
        col(L.onramp_session_id) == bindparam("finder"),
        col(L.found_by_search) == true(),
    )
)
_RELEASE = Sql.per_dialect(
    lambda postgres: delete(CREDITS).where(one_of(col(L.onramp_session_id), "ids", postgres))
)


async def credit(
    sql: SqlTransaction, proposals: list[tuple[Credit, str, bool]], now: datetime
) -> None:
    """Credit each transfer to its session, in the order given, unless another session
    holds it already; `holders` says afterwards who has each."""
    await sql.execute_many(
        _CREDIT,
        [
            {
                "chain": c.chain_id,
                "tx": c.transaction_hash,
                "log": c.log_index,
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
                "chain": c.chain_id,
                "tx": c.transaction_hash,
                "log": c.log_index,
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
    hashes = sorted({c.transaction_hash for c in wanted})
    held = {}
    for row in await sql.rows(_HOLDERS, {"hashes": hashes}):
        key = Credit(row["chain_id"], row["transaction_hash"], row["log_index"])
        if key in wanted:
            held[key] = Holder(row["onramp_session_id"], bool(row["found_by_search"]))
    return held


async def release(sql: SqlTransaction, session_ids: list[str]) -> None:
    """Whatever these sessions held is free again."""
    if session_ids:
        await sql.execute(_RELEASE, {"ids": sorted(session_ids)})
