"""What the delivery capability may read and write of a session: the facts its proof
needs, and its verdict. Delivery goes through these functions, never the table itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.columns import as_utc
from service.sql import Sql, SqlTransaction, with_list


@dataclass(frozen=True)
class SessionToDeliver:
    id: str
    wallet_address: str
    destination_network: str
    destination_currency: str
    destination_amount: str | None
    transaction_hash: str | None
    created_at: datetime
    delivery_status: str
    delivery_detail: str | None
    delivered_amount: str | None
    delivery_confirmations: int
    delivery_block_number: int | None
    delivery_block_hash: str | None


_COLUMNS = (
    "id, wallet_address, destination_network, destination_currency, destination_amount,"
    " transaction_hash, created_at, delivery_status, delivery_detail, delivered_amount,"
    " delivery_confirmations, delivery_block_number, delivery_block_hash"
)
_READ = f"SELECT {_COLUMNS} FROM onramp_sessions WHERE id IN (ids)"  # noqa: S608
_LOCK = "SELECT id FROM onramp_sessions WHERE id IN (ids) ORDER BY id FOR UPDATE"


async def sessions_to_deliver(
    sql: SqlTransaction, session_ids: list[str]
) -> dict[str, SessionToDeliver]:
    if not session_ids:
        return {}
    statement, params = with_list(_READ, "ids", session_ids)
    sessions = {}
    for row in await sql.rows(statement, params):
        row["created_at"] = as_utc(row["created_at"])
        sessions[row["id"]] = SessionToDeliver(**row)
    return sessions


async def lock_sessions(sql: SqlTransaction, session_ids: list[str]) -> None:
    """Take the sessions' row locks before anything else of a verdict's transaction, in
    the order a webhook takes them (session, then its check), so the two never wait on
    each other in a circle. SQLite has a single writer and needs none."""
    if sql.is_postgres and session_ids:
        statement, params = with_list(_LOCK, "ids", session_ids)
        await sql.column(statement, params)


@dataclass(frozen=True)
class DeliveryVerdict:
    session_id: str
    status: str
    detail: str
    delivered_amount: str | None
    confirmations: int
    block_number: int | None
    block_hash: str | None


_RECORD = Sql(
    "UPDATE onramp_sessions SET delivery_status = :status, delivery_detail = :detail,"
    " delivery_checked_at = :now, delivery_confirmations = :confirmations,"
    " delivery_block_number = :block_number, delivery_block_hash = :block_hash,"
    " delivered_amount = :delivered_amount, updated_at = :now"
    " WHERE id = :session_id",
    datetimes=("now",),
)


async def record_verdicts(
    sql: SqlTransaction, verdicts: list[DeliveryVerdict], now: datetime
) -> None:
    await sql.execute_many(
        _RECORD,
        [
            {
                "session_id": v.session_id,
                "status": v.status,
                "detail": v.detail,
                "delivered_amount": v.delivered_amount,
                "confirmations": v.confirmations,
                "block_number": v.block_number,
                "block_hash": v.block_hash,
                "now": now,
            }
            for v in verdicts
        ],
    )


_FULFILLED = (
    "SELECT id FROM onramp_sessions WHERE status = 'fulfillment_complete'"
    " AND (CAST(:delivery_status AS VARCHAR) IS NULL OR delivery_status = :delivery_status)"
)


_EVERY_FULFILLED = Sql(_FULFILLED + " ORDER BY id")


async def fulfilled_sessions(
    sql: SqlTransaction, session_ids: list[str] | None, delivery_status: str | None
) -> list[str]:
    """Fulfilled sessions, all or those named, optionally by delivery status."""
    if session_ids:
        statement, params = with_list(
            _FULFILLED + " AND id IN (ids) ORDER BY id", "ids", session_ids
        )
    else:
        statement, params = _EVERY_FULFILLED, {}
    return await sql.column(statement, {**params, "delivery_status": delivery_status})
