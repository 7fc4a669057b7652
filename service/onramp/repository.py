"""Every statement on `onramp_sessions`, built from the table's model and compiled once
(service/sql.py): through the ORM a create cost about 7 ms of CPU and a read 1.5 ms
(bench/README.md). Rows come back as `SessionRow`s. The create flow, reads and lists,
Stripe's news (updates.py decides, the compare-and-set is here) and the delivery
worker's reads and verdicts all come through this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    column,
    exists,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.sql.dml import Update
from sqlmodel import col

from service.database import Database
from service.notices import Topic
from service.onramp import metrics
from service.onramp.events import Changed, SessionChange, SessionEvents
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus
from service.onramp.models import (
    SESSION_COLUMNS,
    SESSIONS,
    DeliveryVerdict,
    OnrampSession,
    SessionRow,
)
from service.sql import AfterCommit, Sql, SqlTransaction, const, insert_into, one_of

# A session's status or delivery changed: the row as its transaction left it, told to
# this process once committed (service/notices.py), so that its live streams see every
# state at once. Every write that changes what a stream shows tells it here: `advance`,
# `fill_fulfilment` and `record_verdicts` (a session's first stream opens only after its
# create call has answered, so the create flow's writes are never watched).
SESSION_CHANGED: Topic[SessionRow] = Topic("onramp_session_changed")
S = OnrampSession
ROW = tuple(SESSIONS.c[name] for name in SESSION_COLUMNS)  # a SessionRow, in its order
_ID = col(S.id) == bindparam("id")
_THIS = col(S.id) == bindparam("session")  # in an UPDATE, where `id` names the column

# Every column, each a parameter of its own name.
_INSERT = Sql(SESSIONS.insert())
_INSERT_ALONE = Sql(SESSIONS.insert().returning(col(S.id)))
_READ_OWNED = Sql(
    select(*ROW).where(
        _ID, col(S.stripe_session_id).is_not(None), col(S.wallet_address) == bindparam("wallet")
    )
)
_READ_ANY = Sql(select(*ROW).where(_ID))
_LOCK_ONE = Sql(select(*ROW).where(_ID).with_for_update())
# SQLite locks the whole database for its one writer, from the first write on: a write
# that changes nothing takes the lock before the read.
_WRITE_LOCK_SQLITE = Sql(update(SESSIONS).values({col(S.id): col(S.id)}).where(_THIS))
_DELETE = Sql(SESSIONS.delete().where(_ID))
# Stripe's answer to the create call, each column from the parameter `answer_<column>`.
# `FINISH` runs only on a session nothing has touched since it was stored (no webhook
# moved it or named its Stripe id).
STRIPE_ANSWER: tuple[Any, ...] = (
    col(S.stripe_session_id),
    col(S.client_secret),
    col(S.redirect_url),
    col(S.livemode),
    col(S.status),
    col(S.source_amount),
    col(S.transaction_hash),
    col(S.destination_amount),
    col(S.updated_at),
    col(S.network_fee_amount),
    col(S.transaction_fee_amount),
)
# (parameter, column) pairs, named once: Stripe's answer is stored on every create.
_ANSWER_PARAMETERS = tuple((f"answer_{column.key}", column.key) for column in STRIPE_ANSWER)
_ANSWERED: dict[Any, Any] = {
    column: bindparam(parameter)
    for column, (parameter, _) in zip(STRIPE_ANSWER, _ANSWER_PARAMETERS, strict=True)
}
FINISH = (
    update(SESSIONS)
    .values(_ANSWERED)
    .where(
        _THIS,
        col(S.status) == const(LIFECYCLE.initial),
        col(S.stripe_session_id).is_(None),
    )
    .returning(col(S.id))
)
_FINISH = Sql(FINISH)
_STORE_STRIPE_ANSWER = Sql(update(SESSIONS).values(_ANSWERED).where(_THIS))


def values_of(row: SessionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SESSION_COLUMNS}


def stripe_answer_of(row: SessionRow) -> dict[str, Any]:
    answer = {parameter: getattr(row, name) for parameter, name in _ANSWER_PARAMETERS}
    return {"session": row.id, **answer}


def _row_by_name(values: Mapping[str, Any]) -> SessionRow:
    """A row read in a transaction, by column name."""
    return SessionRow(**values)


async def insert(sql: SqlTransaction, row: SessionRow) -> None:
    await sql.execute(_INSERT, values_of(row))


_INSERT_ABSENT = Sql.per_dialect(
    lambda postgres: insert_into(SESSIONS, postgres).on_conflict_do_nothing().returning(col(S.id))
)
_HELD_STRIPE_IDS = Sql.per_dialect(
    lambda postgres: select(col(S.stripe_session_id)).where(
        one_of(col(S.stripe_session_id), "ids", postgres)
    )
)


async def insert_if_absent(sql: SqlTransaction, row: SessionRow) -> bool:
    """Store a session unless its id or its Stripe id is already taken; true if stored."""
    return await sql.scalar(_INSERT_ABSENT, values_of(row)) is not None


async def stripe_ids_held(database: Database, stripe_session_ids: list[str]) -> set[str]:
    """Which of these Stripe ids a session here already has."""
    if not stripe_session_ids:
        return set()
    rows = await database.run_alone(_HELD_STRIPE_IDS, {"ids": stripe_session_ids})
    return {row[0] for row in rows}


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
        await sql.execute(_WRITE_LOCK_SQLITE, {"session": session_id})
    rows = await sql.rows(_LOCK_ONE if sql.is_postgres else _READ_ANY, {"id": session_id})
    return _row_by_name(rows[0]) if rows else None


async def delete(sql: SqlTransaction, session_id: str) -> None:
    await sql.execute(_DELETE, {"id": session_id})


async def read_owned(database: Database, session_id: str, wallet: str) -> SessionRow | None:
    """A session that exists at Stripe and belongs to `wallet`."""
    rows = await database.run_alone(_READ_OWNED, {"id": session_id, "wallet": wallet})
    return SessionRow(*rows[0]) if rows else None


async def read(database: Database, session_id: str) -> SessionRow | None:
    """Whatever stage the session is at, Stripe id or not."""
    rows = await database.run_alone(_READ_ANY, {"id": session_id})
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


_LISTS: dict[tuple[Any, ...], Sql] = {}
# Each filter of a list: its condition, from the parameter of its name.
_FILTERS: dict[str, Any] = {
    "wallet": lambda: col(S.wallet_address) == bindparam("wallet"),
    "status": lambda: col(S.status) == bindparam("status"),
    "before": lambda: col(S.id) < bindparam("before"),
    "since": lambda: col(S.created_at) >= bindparam("since"),
    "until": lambda: col(S.created_at) < bindparam("until"),
}


def _list_statement(
    chosen: Chosen, limit: int | None, newest_first: bool
) -> tuple[Sql, dict[str, Any]]:
    """One statement per combination of filters, so that each keeps a plan that uses
    its index."""
    given = {
        "wallet": chosen.wallet_address,
        "status": chosen.status,
        "before": chosen.before_id,
        "since": chosen.created_since,
        "until": chosen.created_before,
    }
    params: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    shape = (*params, bool(chosen.ids), chosen.unfinished_too, limit is not None, newest_first)
    found = _LISTS.get(shape)
    if found is None:
        found = _LISTS[shape] = Sql.per_dialect(
            lambda postgres: _list(params, chosen, limit is not None, newest_first, postgres)
        )
    if chosen.ids:
        params["ids"] = list(chosen.ids)
    return found, params


def _list(
    params: dict[str, Any], chosen: Chosen, limited: bool, newest_first: bool, postgres: bool
) -> Any:
    conditions: list[ColumnElement[bool]] = [_FILTERS[name]() for name in params]
    if not chosen.unfinished_too:
        conditions.append(col(S.stripe_session_id).is_not(None))
    if chosen.ids:
        conditions.append(one_of(col(S.id), "ids", postgres))
    order = col(S.id).desc() if newest_first else col(S.id).asc()
    statement = select(*ROW).where(*conditions).order_by(order)
    return statement.limit(bindparam("limit")) if limited else statement


async def list_sessions(
    database: Database, chosen: Chosen, *, limit: int | None, newest_first: bool = True
) -> list[SessionRow]:
    """The chosen sessions, by id (creation order); all of them without a `limit`."""
    statement, params = _list_statement(chosen, limit, newest_first)
    if limit is not None:
        params["limit"] = limit
    return [SessionRow(*row) for row in await database.run_alone(statement, params)]


# Stripe's news. A session is found by Stripe's id, or by our own id (from the Stripe
# session's metadata) while the create call has not stored Stripe's id yet and no other
# session has it: a Stripe id, once on a session, is never moved to another. News moves
# only a session of its own mode (live or test).
_HOLDER = SESSIONS.alias("holder")
_FOUND_ANY_MODE = or_(
    col(S.stripe_session_id) == bindparam("sid"),
    and_(
        bindparam("oid", type_=String).is_not(None),
        col(S.id) == bindparam("oid"),
        col(S.stripe_session_id).is_(None),
        ~exists().where(_HOLDER.c.stripe_session_id == bindparam("sid")),
    ),
)
_FOUND = and_(_FOUND_ANY_MODE, col(S.livemode) == bindparam("live"))
# Newer news carries Stripe's fees as they now stand; older news only fills a gap.
_NEWER_FEES: dict[Any, Any] = {
    col(S.network_fee_amount): func.coalesce(bindparam("network_fee"), col(S.network_fee_amount)),
    col(S.transaction_fee_amount): func.coalesce(
        bindparam("transaction_fee"), col(S.transaction_fee_amount)
    ),
}
_FULFILMENT_NEWS: dict[Any, Any] = {
    col(S.transaction_hash): func.coalesce(col(S.transaction_hash), bindparam("tx")),
    col(S.destination_amount): func.coalesce(col(S.destination_amount), bindparam("amount")),
    col(S.delivery_status): const(DeliveryStatus.PENDING),
}


# A SessionRow's columns as an UPDATE returns them, unqualified: the statement that
# extends `moving` stays within psycopg's cache of converted queries (sql.py).
_RETURNED = tuple(column(name, SESSIONS.c[name].type) for name in SESSION_COLUMNS)


def moving(status: str) -> Update | None:
    """The compare-and-set to `status`, only from the statuses the lifecycle allows,
    returning the row as moved: `advance` runs it, and a caller may extend it into a
    statement of its own (a Stripe event applied in one statement,
    service/webhooks/repository.py). None where no status may move to `status`."""
    before = LIFECYCLE.statuses_before(status)
    if not before:
        return None
    fulfilled = _FULFILMENT_NEWS if status == LIFECYCLE.fulfilled else {}
    moved: dict[Any, Any] = {
        col(S.status): const(status),
        col(S.updated_at): bindparam("now"),
        col(S.stripe_session_id): func.coalesce(col(S.stripe_session_id), bindparam("sid")),
        **fulfilled,
        **_NEWER_FEES,
    }
    return (
        update(SESSIONS)
        .values(moved)
        .where(_FOUND, col(S.status).in_([const(s) for s in before]))
        .returning(*_RETURNED)
    )


_ADVANCE: dict[str, Sql] = {
    status: Sql(statement)
    for status in LIFECYCLE.statuses
    if (statement := moving(status)) is not None
}
# The session found is the one the news's metadata names, if it names one: nothing for
# `updates._conflict` to report.
UNCONTESTED = or_(bindparam("oid", type_=String).is_(None), col(S.id) == bindparam("oid"))


def _news_of(name: str) -> ColumnElement[bool]:
    """Stripe's news names it, where the session has none yet."""
    return bindparam(name, type_=String).is_not(None)


# News for a fulfilled session: its delivery is undecided again until checked anew.
_FILL_FULFILMENT = Sql(
    update(SESSIONS)
    .values(
        {
            **_FULFILMENT_NEWS,
            col(S.network_fee_amount): func.coalesce(
                col(S.network_fee_amount), bindparam("network_fee")
            ),
            col(S.transaction_fee_amount): func.coalesce(
                col(S.transaction_fee_amount), bindparam("transaction_fee")
            ),
            col(S.delivery_detail): null(),
            col(S.updated_at): bindparam("now"),
        }
    )
    .where(
        _FOUND,
        col(S.status) == const(LIFECYCLE.fulfilled),
        or_(
            and_(col(S.transaction_hash).is_(None), _news_of("tx")),
            and_(col(S.destination_amount).is_(None), _news_of("amount")),
        ),
    )
    .returning(*ROW)
)
_FILL_FEES = Sql(
    update(SESSIONS)
    .values(
        {
            col(S.network_fee_amount): bindparam("network_fee"),
            col(S.transaction_fee_amount): bindparam("transaction_fee"),
            col(S.updated_at): bindparam("now"),
        }
    )
    .where(
        _FOUND,
        col(S.network_fee_amount).is_(None),
        col(S.transaction_fee_amount).is_(None),
    )
    .returning(col(S.id))
)
_FIND = Sql(select(col(S.id), col(S.livemode)).where(_FOUND_ANY_MODE))


def can_advance_to(status: str) -> bool:
    return status in _ADVANCE


async def advance(sql: SqlTransaction, status: str, found: dict[str, Any]) -> SessionRow | None:
    """Move the found session to `status` if the state machine allows it from where it
    is (a compare-and-set on the status); the session as moved, or None when nothing
    moved. Only a move that commits is counted, so a dry run or a repeated event counts
    nothing."""
    rows = await sql.rows(_ADVANCE[status], found)
    return moved(sql, status, _row_by_name(rows[0])) if rows else None


def moved(sql: AfterCommit, status: str, row: SessionRow) -> SessionRow:
    """A move to `status` is counted, and told to this process's live streams, once it
    has committed."""
    sql.after_commit(partial(metrics.session_moved, status, row.source_amount, row.source_currency))
    sql.tell(SESSION_CHANGED, row)
    return row


async def fill_fulfilment(sql: SqlTransaction, found: dict[str, Any]) -> str | None:
    """A late transaction id or amount on a fulfilled session; its id if anything was new."""
    rows = await sql.rows(_FILL_FULFILMENT, found)
    if not rows:
        return None
    filled = _row_by_name(rows[0])
    sql.tell(SESSION_CHANGED, filled)
    return filled.id


async def fill_fees(sql: SqlTransaction, found: dict[str, Any]) -> str | None:
    """Fees on older news for a session that has none yet (one restored, say)."""
    filled: str | None = await sql.scalar(_FILL_FEES, found)
    return filled


async def find(sql: SqlTransaction, found: dict[str, Any]) -> tuple[str, bool] | None:
    """The session Stripe's news names, in either mode: its id and livemode."""
    rows = await sql.rows(_FIND, found)
    return (rows[0]["id"], bool(rows[0]["livemode"])) if rows else None


# The delivery worker's door to sessions: what its proof needs, and its verdict.
_READ_MANY = Sql.per_dialect(
    lambda postgres: select(*ROW).where(one_of(col(S.id), "ids", postgres))
)
_LOCK_MANY = Sql.per_dialect(
    lambda postgres: (
        select(col(S.id))
        .where(one_of(col(S.id), "ids", postgres))
        .order_by(col(S.id))
        .with_for_update()
    )
)


def _fulfilled(postgres: bool, named: bool) -> Any:
    """Fulfilled sessions, of a delivery status when `:delivery` is not null."""
    wanted = bindparam("delivery", type_=String)
    statement = select(col(S.id)).where(
        col(S.status) == const(LIFECYCLE.fulfilled),
        or_(wanted.is_(None), col(S.delivery_status) == wanted),
    )
    if named:
        statement = statement.where(one_of(col(S.id), "ids", postgres))
    return statement.order_by(col(S.id))


_EVERY_FULFILLED = Sql.per_dialect(lambda postgres: _fulfilled(postgres, named=False))
_FULFILLED_NAMED = Sql.per_dialect(lambda postgres: _fulfilled(postgres, named=True))
_RECORD_VERDICT = Sql(
    update(SESSIONS)
    .values(
        {
            col(S.delivery_status): bindparam("verdict"),
            col(S.delivery_detail): bindparam("detail"),
            col(S.delivery_checked_at): bindparam("now"),
            col(S.delivery_confirmations): bindparam("confirmations"),
            col(S.delivery_block_number): bindparam("block_number"),
            col(S.delivery_block_hash): bindparam("block_hash"),
            col(S.delivered_amount): bindparam("delivered"),
            col(S.updated_at): bindparam("now"),
        }
    )
    .where(col(S.id) == bindparam("session"))
)


async def sessions_to_deliver(sql: SqlTransaction, session_ids: list[str]) -> dict[str, SessionRow]:
    if not session_ids:
        return {}
    rows = await sql.rows(_READ_MANY, {"ids": session_ids})
    return {row["id"]: _row_by_name(row) for row in rows}


async def lock_sessions(sql: SqlTransaction, session_ids: list[str]) -> None:
    """Take the sessions' row locks before anything else of a verdict's transaction, in
    the order a webhook takes them (session, then its check), so the two never wait on
    each other in a circle. SQLite has a single writer and needs none."""
    if sql.is_postgres and session_ids:
        await sql.column(_LOCK_MANY, {"ids": session_ids})


# Merchant webhooks: each session's delivery status before a round's verdicts.
_DELIVERY_STATUSES = Sql.per_dialect(
    lambda postgres: select(col(S.id), col(S.delivery_status)).where(
        one_of(col(S.id), "ids", postgres)
    )
)


async def record_verdicts(
    sql: SqlTransaction, verdicts: list[DeliveryVerdict], now: datetime, events: SessionEvents
) -> None:
    """The verdicts on their sessions; a verdict that changes a delivery's status is told
    to `events` in the same transaction."""
    if not verdicts:
        return
    ids = [v.session_id for v in verdicts]
    before = {
        r["id"]: r["delivery_status"] for r in await sql.rows(_DELIVERY_STATUSES, {"ids": ids})
    }
    await sql.execute_many(
        _RECORD_VERDICT,
        [
            {
                "session": v.session_id,
                "verdict": v.status,
                "detail": v.detail,
                "delivered": v.delivered_amount,
                "confirmations": v.confirmations,
                "block_number": v.block_number,
                "block_hash": v.block_hash,
                "now": now,
            }
            for v in verdicts
        ],
    )
    moved = [v.session_id for v in verdicts if before.get(v.session_id) != v.status]
    if moved:
        await events.record(sql, [SessionChange(i, Changed.DELIVERY) for i in moved], now)
    if sql.listened(SESSION_CHANGED):
        rows = await sessions_to_deliver(sql, sorted({v.session_id for v in verdicts}))
        for row in rows.values():
            sql.tell(SESSION_CHANGED, row)


async def fulfilled_sessions(
    sql: SqlTransaction, session_ids: list[str] | None, delivery_status: str | None
) -> list[str]:
    """Fulfilled sessions, all or those named, optionally by delivery status."""
    if session_ids:
        return await sql.column(_FULFILLED_NAMED, {"ids": session_ids, "delivery": delivery_status})
    return await sql.column(_EVERY_FULFILLED, {"delivery": delivery_status})
