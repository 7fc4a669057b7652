"""Every statement on `onramp_sessions`, in hand-written SQL that PostgreSQL and SQLite
both accept (service/sql.py says why). Rows come back as `SessionRow`s, read by name.

Through the ORM, creating a session cost about 7 ms of CPU and reading one about
1.5 ms, several times the database work itself (bench/README.md). On PostgreSQL a
statement that stands alone runs without BEGIN and COMMIT (`Database.run_alone`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.columns import UtcDateTime, as_utc
from service.database import Database
from service.onramp.models import SESSION_COLUMNS, SessionRow
from service.sql import Sql, SqlTransaction, with_list

COLUMNS = ", ".join(SESSION_COLUMNS)
DATETIMES = ("delivery_checked_at", "created_at", "updated_at")
_TYPES = {name: UtcDateTime() for name in DATETIMES}
INSERT = f"INSERT INTO onramp_sessions ({COLUMNS})"
INSERT_VALUES = ", ".join(f":{name}" for name in SESSION_COLUMNS)
_INSERT = Sql(f"{INSERT} VALUES ({INSERT_VALUES})", datetimes=DATETIMES)
_READ = f"SELECT {COLUMNS} FROM onramp_sessions"  # noqa: S608 - constants
_READ_OWNED = Sql(
    f"{_READ} WHERE id = :id AND stripe_session_id IS NOT NULL AND wallet_address = :wallet"
)
_READ_ANY = Sql(f"{_READ} WHERE id = :id")
_LOCK_ONE = Sql(f"{_READ} WHERE id = :id FOR UPDATE")
_LOCK_ONE_SQLITE = _READ_ANY  # one writer at a time: the transaction is the lock
_DELETE = Sql("DELETE FROM onramp_sessions WHERE id = :id")
# Stripe's answer to the create call. `FINISH` runs only on a session nothing has touched
# since it was stored (no webhook moved it or named its Stripe id).
_STRIPE_FIELDS = (
    "stripe_session_id = :stripe_session_id, client_secret = :client_secret,"
    " livemode = :livemode, status = :status, transaction_hash = :transaction_hash,"
    " destination_amount = :destination_amount, updated_at = :updated_at"
)
FINISH = (
    f"UPDATE onramp_sessions SET {_STRIPE_FIELDS}"  # noqa: S608 - constants
    " WHERE id = :id AND status = 'initialized' AND stripe_session_id IS NULL RETURNING id"
)
_FINISH = Sql(FINISH, datetimes=("updated_at",))
_STORE_STRIPE_ANSWER = Sql(
    f"UPDATE onramp_sessions SET {_STRIPE_FIELDS} WHERE id = :id",  # noqa: S608 - constants
    datetimes=("updated_at",),
)


def values_of(row: SessionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SESSION_COLUMNS}


def stripe_answer_of(row: SessionRow) -> dict[str, Any]:
    names: tuple[str, ...] = ("id", "stripe_session_id", "client_secret", "livemode", "status")
    names += ("transaction_hash", "destination_amount", "updated_at")
    return {name: getattr(row, name) for name in names}


def _row(values: tuple[Any, ...] | Mapping[str, Any]) -> SessionRow:
    # SELECT lists COLUMNS, the dataclass's own fields in their order.
    row = SessionRow(**values) if isinstance(values, Mapping) else SessionRow(*values)
    row.created_at, row.updated_at = as_utc(row.created_at), as_utc(row.updated_at)
    if row.delivery_checked_at is not None:
        row.delivery_checked_at = as_utc(row.delivery_checked_at)
    return row


async def insert(sql: SqlTransaction, row: SessionRow) -> None:
    await sql.execute(_INSERT, values_of(row))


async def insert_alone(database: Database, row: SessionRow) -> None:
    await database.run_alone(Sql(f"{_INSERT.statement} RETURNING id", DATETIMES), values_of(row))


async def finish(sql: SqlTransaction, row: SessionRow) -> bool:
    return await sql.scalar(_FINISH, stripe_answer_of(row)) is not None


async def finish_alone(database: Database, row: SessionRow) -> bool:
    return bool(await database.run_alone(_FINISH, stripe_answer_of(row)))


async def store_stripe_answer(sql: SqlTransaction, row: SessionRow) -> None:
    await sql.execute(_STORE_STRIPE_ANSWER, stripe_answer_of(row))


async def lock(sql: SqlTransaction, session_id: str) -> SessionRow | None:
    """The session, its row locked until the transaction ends."""
    rows = await sql.rows(_LOCK_ONE if sql.is_postgres else _LOCK_ONE_SQLITE, {"id": session_id})
    return _row(rows[0]) if rows else None


async def delete(sql: SqlTransaction, session_id: str) -> None:
    await sql.execute(_DELETE, {"id": session_id})


async def read_owned(database: Database, session_id: str, wallet: str) -> SessionRow | None:
    """A session that exists at Stripe and belongs to `wallet`."""
    rows = await database.run_alone(_READ_OWNED, {"id": session_id, "wallet": wallet}, _TYPES)
    return _row(rows[0]) if rows else None


async def read(database: Database, session_id: str) -> SessionRow | None:
    """Whatever stage the session is at, Stripe id or not."""
    rows = await database.run_alone(_READ_ANY, {"id": session_id}, _TYPES)
    return _row(rows[0]) if rows else None


@dataclass(frozen=True)
class Chosen:
    """Which sessions a list takes: only those that exist at Stripe, always."""

    wallet_address: str | None = None
    status: str | None = None
    before_id: str | None = None  # a page's cursor: ids sort by creation time
    created_since: datetime | None = None
    ids: tuple[str, ...] = ()


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
    }
    present = {key: value for key, value in given.items() if value is not None}
    conditions = ["stripe_session_id IS NOT NULL", *(condition for _, condition in present)]
    conditions += ["id IN (ids)"] if chosen.ids else []
    params: dict[str, Any] = {name: value for (name, _), value in present.items()}
    order = "DESC" if newest_first else "ASC"
    limited = " LIMIT :limit" if limit is not None else ""
    template = f"{_READ} WHERE {' AND '.join(conditions)} ORDER BY id {order}{limited}"
    datetimes = ("since",) if chosen.created_since is not None else ()
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
    return [_row(row) for row in await database.run_alone(statement, params, _TYPES)]
