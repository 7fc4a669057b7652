"""Every statement on `onramp_sessions`, in hand-written SQL for PostgreSQL and SQLite:
through the ORM a create cost about 7 ms of CPU and a read 1.5 ms (bench/README.md).
Rows come back as `SessionRow`s. The create flow, reads and lists, Stripe's news
(updates.py decides, the compare-and-set is here) and the delivery worker's reads and
verdicts all come through this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from service.columns import UtcDateTime, as_utc
from service.database import Database
from service.onramp import metrics
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus
from service.onramp.models import SESSION_COLUMNS, DeliveryVerdict, SessionRow
from service.sql import Sql, SqlTransaction, with_list

COLUMNS = ", ".join(SESSION_COLUMNS)
DATETIMES = ("delivery_checked_at", "created_at", "updated_at")
_TYPES = {name: UtcDateTime() for name in DATETIMES}
INSERT = f"INSERT INTO onramp_sessions ({COLUMNS})"
INSERT_VALUES = ", ".join(f":{name}" for name in SESSION_COLUMNS)
_INSERT = Sql(f"{INSERT} VALUES ({INSERT_VALUES})", datetimes=DATETIMES)
_INSERT_ALONE = Sql(f"{INSERT} VALUES ({INSERT_VALUES}) RETURNING id", datetimes=DATETIMES)
_READ = f"SELECT {COLUMNS} FROM onramp_sessions"
_READ_OWNED = Sql(
    f"{_READ} WHERE id = :id AND stripe_session_id IS NOT NULL AND wallet_address = :wallet"
)
_READ_ANY = Sql(f"{_READ} WHERE id = :id")
_LOCK_ONE = Sql(f"{_READ} WHERE id = :id FOR UPDATE")
# SQLite locks the whole database for its one writer, from the first write on: a write
# that changes nothing takes the lock before the read.
_WRITE_LOCK_SQLITE = Sql("UPDATE onramp_sessions SET id = id WHERE id = :id")
_DELETE = Sql("DELETE FROM onramp_sessions WHERE id = :id")
# Stripe's answer to the create call. `FINISH` runs only on a session nothing has touched
# since it was stored (no webhook moved it or named its Stripe id).
_STRIPE_ANSWER: tuple[str, ...] = ("stripe_session_id", "client_secret", "redirect_url")
_STRIPE_ANSWER += ("livemode", "status", "source_amount")
_STRIPE_ANSWER += ("transaction_hash", "destination_amount", "updated_at")
_STRIPE_ANSWER += ("network_fee_amount", "transaction_fee_amount")
_STRIPE_FIELDS = ", ".join(f"{name} = :{name}" for name in _STRIPE_ANSWER)
FINISH = (
    f"UPDATE onramp_sessions SET {_STRIPE_FIELDS}"
    f" WHERE id = :id AND status = '{LIFECYCLE.initial}' AND stripe_session_id IS NULL"
    " RETURNING id"
)
_FINISH = Sql(FINISH, datetimes=("updated_at",))
_STORE_STRIPE_ANSWER = Sql(
    f"UPDATE onramp_sessions SET {_STRIPE_FIELDS} WHERE id = :id", ("updated_at",)
)


def values_of(row: SessionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SESSION_COLUMNS}


def stripe_answer_of(row: SessionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ("id", *_STRIPE_ANSWER)}


def _row_by_name(values: Mapping[str, Any]) -> SessionRow:
    """A row read in a transaction, where SQLite's timestamps are still text. Rows read on
    their own (`Database.run_alone`) come back in UTC from either database, and become a
    `SessionRow(*values)` as they are."""
    row = SessionRow(*(values[name] for name in SESSION_COLUMNS))
    row.created_at, row.updated_at = as_utc(row.created_at), as_utc(row.updated_at)
    if row.delivery_checked_at is not None:
        row.delivery_checked_at = as_utc(row.delivery_checked_at)
    return row


async def insert(sql: SqlTransaction, row: SessionRow) -> None:
    await sql.execute(_INSERT, values_of(row))


_INSERT_ABSENT = Sql(
    f"{INSERT} VALUES ({INSERT_VALUES}) ON CONFLICT DO NOTHING RETURNING id", datetimes=DATETIMES
)
_HELD_STRIPE_IDS = "SELECT stripe_session_id FROM onramp_sessions WHERE stripe_session_id IN (ids)"


async def insert_if_absent(sql: SqlTransaction, row: SessionRow) -> bool:
    """Store a session unless its id or its Stripe id is already taken; true if stored."""
    return await sql.scalar(_INSERT_ABSENT, values_of(row)) is not None


async def stripe_ids_held(database: Database, stripe_session_ids: list[str]) -> set[str]:
    """Which of these Stripe ids a session here already has."""
    if not stripe_session_ids:
        return set()
    statement, params = with_list(_HELD_STRIPE_IDS, "ids", stripe_session_ids)
    return {row[0] for row in await database.run_alone(statement, params)}


async def insert_alone(database: Database, row: SessionRow) -> None:
    await database.run_alone(_INSERT_ALONE, values_of(row))


async def finish(sql: SqlTransaction, row: SessionRow) -> bool:
    return await sql.scalar(_FINISH, stripe_answer_of(row)) is not None


async def finish_alone(database: Database, row: SessionRow) -> bool:
    return bool(await database.run_alone(_FINISH, stripe_answer_of(row)))


async def store_stripe_answer(sql: SqlTransaction, row: SessionRow) -> None:
    await sql.execute(_STORE_STRIPE_ANSWER, stripe_answer_of(row))


async def lock(sql: SqlTransaction, session_id: str) -> SessionRow | None:
    """The session, its row locked until the transaction ends."""
    if not sql.is_postgres:
        await sql.execute(_WRITE_LOCK_SQLITE, {"id": session_id})
    rows = await sql.rows(_LOCK_ONE if sql.is_postgres else _READ_ANY, {"id": session_id})
    return _row_by_name(rows[0]) if rows else None


async def delete(sql: SqlTransaction, session_id: str) -> None:
    await sql.execute(_DELETE, {"id": session_id})


async def read_owned(database: Database, session_id: str, wallet: str) -> SessionRow | None:
    """A session that exists at Stripe and belongs to `wallet`."""
    rows = await database.run_alone(_READ_OWNED, {"id": session_id, "wallet": wallet}, _TYPES)
    return SessionRow(*rows[0]) if rows else None


async def read(database: Database, session_id: str) -> SessionRow | None:
    """Whatever stage the session is at, Stripe id or not."""
    rows = await database.run_alone(_READ_ANY, {"id": session_id}, _TYPES)
    return SessionRow(*rows[0]) if rows else None


class Chosen(NamedTuple):
    """Which sessions a list takes: those that exist at Stripe, unless `unfinished_too`."""

    wallet_address: str | None = None
    status: str | None = None
    before_id: str | None = None  # a page's cursor: ids sort by creation time
    created_since: datetime | None = None
    ids: tuple[str, ...] = ()
    created_before: datetime | None = None
    # Also sessions whose create call has not stored Stripe's answer (never listed to
    # their owners): for operators' lookups by id.
    unfinished_too: bool = False


_LISTS: dict[str, Sql] = {}


def _list_statement(
    chosen: Chosen, limit: int | None, newest_first: bool
) -> tuple[Sql, dict[str, Any]]:
    """One statement per combination of filters, so that each keeps a plan that uses
    its index."""
    given = {
        ("wallet", "wallet_address = :wallet"): chosen.wallet_address,
        ("status", "status = :status"): chosen.status,
        ("before", "id < :before"): chosen.before_id,
        ("since", "created_at >= :since"): chosen.created_since,
        ("until", "created_at < :until"): chosen.created_before,
    }
    present = {key: value for key, value in given.items() if value is not None}
    conditions = [] if chosen.unfinished_too else ["stripe_session_id IS NOT NULL"]
    conditions += [condition for _, condition in present]
    conditions += ["id IN (ids)"] if chosen.ids else []
    params: dict[str, Any] = {name: value for (name, _), value in present.items()}
    order = "DESC" if newest_first else "ASC"
    limited = " LIMIT :limit" if limit is not None else ""
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    template = f"{_READ}{where} ORDER BY id {order}{limited}"
    datetimes = tuple(name for name in ("since", "until") if name in params)
    if chosen.ids:
        statement, listed = with_list(template, "ids", chosen.ids, datetimes)
        return statement, params | listed
    found = _LISTS.get(template)
    if found is None:
        found = _LISTS[template] = Sql(template, datetimes)
    return found, params


async def list_sessions(
    database: Database, chosen: Chosen, *, limit: int | None, newest_first: bool = True
) -> list[SessionRow]:
    """The chosen sessions, by id (creation order); all of them without a `limit`."""
    statement, params = _list_statement(chosen, limit, newest_first)
    if limit is not None:
        params["limit"] = limit
    return [SessionRow(*row) for row in await database.run_alone(statement, params, _TYPES)]


# Stripe's news. A session is found by Stripe's id, or by our own id (from the Stripe
# session's metadata) while the create call has not stored Stripe's id yet and no other
# session has it: a Stripe id, once on a session, is never moved to another. News moves
# only a session of its own mode (live or test).
_FOUND_ANY_MODE = (
    "(stripe_session_id = :sid OR (CAST(:oid AS VARCHAR) IS NOT NULL"
    " AND id = :oid AND stripe_session_id IS NULL AND NOT EXISTS"
    " (SELECT 1 FROM onramp_sessions AS holder WHERE holder.stripe_session_id = :sid)))"
)
_FOUND = f"({_FOUND_ANY_MODE} AND livemode = :livemode)"


# Newer news carries Stripe's fees as they now stand; older news only fills a gap.
_NEWER_FEES = (
    ", network_fee_amount = COALESCE(:network_fee, network_fee_amount)"
    ", transaction_fee_amount = COALESCE(:transaction_fee, transaction_fee_amount)"
)


def _advance_statement(status: str) -> Sql | None:
    before = LIFECYCLE.statuses_before(status)
    if not before:
        return None
    fulfilled = ""
    if status == LIFECYCLE.fulfilled:
        fulfilled = (
            ", transaction_hash = COALESCE(transaction_hash, :tx)"
            ", destination_amount = COALESCE(destination_amount, :amount)"
            f", delivery_status = '{DeliveryStatus.PENDING}'"
        )
    allowed = ", ".join(f"'{s}'" for s in before)  # the lifecycle's own constants
    return Sql(
        "UPDATE onramp_sessions SET status = :status, updated_at = :now,"
        f" stripe_session_id = COALESCE(stripe_session_id, :sid){fulfilled}{_NEWER_FEES}"
        f" WHERE {_FOUND} AND status IN ({allowed}) RETURNING id, source_amount, source_currency",
        datetimes=("now",),
    )


_ADVANCE: dict[str, Sql] = {
    status: sql for status in LIFECYCLE.statuses if (sql := _advance_statement(status))
}
# News for a fulfilled session: its delivery is undecided again until checked anew.
_FILL_FULFILMENT = Sql(
    "UPDATE onramp_sessions SET transaction_hash = COALESCE(transaction_hash, :tx),"
    " destination_amount = COALESCE(destination_amount, :amount),"
    " network_fee_amount = COALESCE(network_fee_amount, :network_fee),"
    " transaction_fee_amount = COALESCE(transaction_fee_amount, :transaction_fee),"
    f" delivery_status = '{DeliveryStatus.PENDING}', delivery_detail = NULL, updated_at = :now"
    f" WHERE {_FOUND} AND status = '{LIFECYCLE.fulfilled}'"
    " AND ((transaction_hash IS NULL AND CAST(:tx AS VARCHAR) IS NOT NULL)"
    " OR (destination_amount IS NULL AND CAST(:amount AS VARCHAR) IS NOT NULL))"
    " RETURNING id",
    datetimes=("now",),
)
_FILL_FEES = Sql(
    "UPDATE onramp_sessions SET network_fee_amount = :network_fee,"
    " transaction_fee_amount = :transaction_fee, updated_at = :now"
    f" WHERE {_FOUND} AND network_fee_amount IS NULL AND transaction_fee_amount IS NULL"
    " RETURNING id",
    datetimes=("now",),
)
_FIND = Sql(f"SELECT id, livemode FROM onramp_sessions WHERE {_FOUND_ANY_MODE}")


def can_advance_to(status: str) -> bool:
    return status in _ADVANCE


async def advance(sql: SqlTransaction, status: str, found: dict[str, Any]) -> str | None:
    """Move the found session to `status` if the state machine allows it from where it
    is (a compare-and-set on the status); its id, or None when nothing moved. Only a
    move that commits is counted, so a dry run or a repeated event counts nothing."""
    rows = await sql.rows(_ADVANCE[status], {**found, "status": status})
    if not rows:
        return None
    moved = rows[0]
    sql.after_commit(
        partial(metrics.session_moved, status, moved["source_amount"], moved["source_currency"])
    )
    return str(moved["id"])


async def fill_fulfilment(sql: SqlTransaction, found: dict[str, Any]) -> str | None:
    """A late transaction id or amount on a fulfilled session; its id if anything was new."""
    filled: str | None = await sql.scalar(_FILL_FULFILMENT, found)
    return filled


async def fill_fees(sql: SqlTransaction, found: dict[str, Any]) -> str | None:
    """Fees on older news for a session that has none yet (one restored, say)."""
    filled: str | None = await sql.scalar(_FILL_FEES, found)
    return filled


async def find(sql: SqlTransaction, found: dict[str, Any]) -> tuple[str, bool] | None:
    """The session Stripe's news names, in either mode: its id and livemode."""
    rows = await sql.rows(_FIND, found)
    return (rows[0]["id"], bool(rows[0]["livemode"])) if rows else None


# The delivery worker's door to sessions: what its proof needs, and its verdict.
_READ_MANY = f"{_READ} WHERE id IN (ids)"
_LOCK_MANY = "SELECT id FROM onramp_sessions WHERE id IN (ids) ORDER BY id FOR UPDATE"
_FULFILLED = (
    f"SELECT id FROM onramp_sessions WHERE status = '{LIFECYCLE.fulfilled}'"
    " AND (CAST(:delivery_status AS VARCHAR) IS NULL OR delivery_status = :delivery_status)"
)
_EVERY_FULFILLED = Sql(_FULFILLED + " ORDER BY id")
_RECORD_VERDICT = Sql(
    "UPDATE onramp_sessions SET delivery_status = :status, delivery_detail = :detail,"
    " delivery_checked_at = :now, delivery_confirmations = :confirmations,"
    " delivery_block_number = :block_number, delivery_block_hash = :block_hash,"
    " delivered_amount = :delivered_amount, updated_at = :now"
    " WHERE id = :session_id",
    datetimes=("now",),
)


async def sessions_to_deliver(sql: SqlTransaction, session_ids: list[str]) -> dict[str, SessionRow]:
    if not session_ids:
        return {}
    statement, params = with_list(_READ_MANY, "ids", session_ids)
    rows = await sql.rows(statement, params)
    return {row["id"]: _row_by_name(row) for row in rows}


async def lock_sessions(sql: SqlTransaction, session_ids: list[str]) -> None:
    """Take the sessions' row locks before anything else of a verdict's transaction, in
    the order a webhook takes them (session, then its check), so the two never wait on
    each other in a circle. SQLite has a single writer and needs none."""
    if sql.is_postgres and session_ids:
        statement, params = with_list(_LOCK_MANY, "ids", session_ids)
        await sql.column(statement, params)


async def record_verdicts(
    sql: SqlTransaction, verdicts: list[DeliveryVerdict], now: datetime
) -> None:
    await sql.execute_many(_RECORD_VERDICT, [{**vars(v), "now": now} for v in verdicts])


async def fulfilled_sessions(
    sql: SqlTransaction, session_ids: list[str] | None, delivery_status: str | None
) -> list[str]:
    """Fulfilled sessions, all or those named, optionally by delivery status."""
    if session_ids:
        template = _FULFILLED + " AND id IN (ids) ORDER BY id"
        statement, params = with_list(template, "ids", session_ids)
    else:
        statement, params = _EVERY_FULFILLED, {}
    return await sql.column(statement, {**params, "delivery_status": delivery_status})
