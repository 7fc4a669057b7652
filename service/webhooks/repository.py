"""Every statement on `webhook_events`, the event log: insert-or-ignore on Stripe's
event id, record what was done, read events back for replay, and drop old ones that no
session needs (service/webhooks/retention.py says which)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    update,
)
from sqlmodel import col

from service.columns import table_of
from service.database import Database
from service.delivery.checks import move_check_values, with_check_of_move
from service.merchant_webhooks.outbox import move_event_values
from service.merchant_webhooks.payloads import session_from_json
from service.merchant_webhooks.repository import (
    NewEvent,
    insert_events,
    new_event_values,
    session_json,
    with_event_of_move,
    with_new_event,
)
from service.onramp import repository as sessions
from service.onramp.lifecycle import LIFECYCLE, Lifecycle
from service.onramp.models import SESSIONS, SessionRow, settled
from service.onramp.updates import APPLIED, news_of
from service.sql import Committing, Sql, SqlTransaction, batch_delete, const, insert_into, one_of
from service.webhooks.events import StripeEvent
from service.webhooks.models import WebhookEvent

E = WebhookEvent
EVENTS = table_of(WebhookEvent)


async def record_event(
    sql: SqlTransaction,
    event: StripeEvent,
    payload: bytes,
    now: datetime,
    outcome: str,
    onramp_session_id: str | None,
    error: str | None = None,
    merchant_events: Sequence[NewEvent] = (),
) -> bool:
    """Store the event with what processing did, and the merchant webhooks' events its
    change made (`outbox.Held`); false if it was already processed (the caller rolls
    back, the merchant events with it).

    Stripe's event id is the primary key, so two concurrent deliveries of one event
    store it once: the second waits on the first and then finds it processed. An event
    stored as `failed` (or never processed) is updated by its redelivery.
    """
    statement, merchant = _RECORD, {}
    if sql.is_postgres and len(merchant_events) == 1:
        statement, merchant = _RECORD_WITH_NEW_EVENT, new_event_values(merchant_events[0])
    else:
        await insert_events(sql, list(merchant_events))
    stored = await sql.scalar(
        statement,
        {
            **merchant,
            **_logged_values(event, payload, now),
            "onramp_session_id": onramp_session_id,
            "processed_at": None if outcome == "failed" else now,
            "outcome": outcome,
            "error": error,
            "attempts": 1,
        },
    )
    return stored is not None


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    payload: str


_STORED: dict[tuple[bool, bool], Sql] = {}


async def stored_events(
    database: Database, *, since: datetime | None = None, event_ids: list[str] | None = None
) -> list[StoredEvent]:
    """Stored events in the order they arrived, for replay."""
    statement, params = stored_events_statement(since, event_ids)
    return [StoredEvent(*row) for row in await database.run_alone(statement, params)]


def stored_events_statement(
    since: datetime | None, event_ids: list[str] | None
) -> tuple[Sql, dict[str, Any]]:
    shape = (since is not None, bool(event_ids))
    statement = _STORED.get(shape)
    if statement is None:
        statement = _STORED[shape] = Sql.per_dialect(lambda postgres: _stored(*shape, postgres))
    params: dict[str, Any] = {"since": since} if since is not None else {}
    return statement, params | ({"ids": event_ids} if event_ids else {})


def _stored(since: bool, named: bool, postgres: bool) -> Any:
    conditions = [col(E.received_at) >= bindparam("since")] if since else []
    conditions += [one_of(col(E.id), "ids", postgres)] if named else []
    return (
        select(col(E.id), col(E.type), col(E.payload))
        .where(*conditions)
        .order_by(col(E.received_at), col(E.id))
    )


_RECORD_OUTCOME = Sql(
    update(EVENTS)
    .values(
        {
            col(E.outcome): bindparam("result"),
            col(E.processed_at): bindparam("now"),
            col(E.onramp_session_id): func.coalesce(bindparam("oid"), col(E.onramp_session_id)),
            col(E.error): null(),
            col(E.attempts): col(E.attempts) + 1,
        }
    )
    .where(col(E.id) == bindparam("event"))
)


async def record_outcome(
    sql: SqlTransaction, event_id: str, outcome: str, session_id: str | None, now: datetime
) -> None:
    """What a replay did with a stored event."""
    values = {"event": event_id, "result": outcome, "oid": session_id, "now": now}
    await sql.execute(_RECORD_OUTCOME, values)


def _processed(stored: Any) -> dict[Any, Any]:
    """What a delivery's processing writes over a stored event's row."""
    return {
        col(E.processed_at): stored.excluded.processed_at,
        col(E.outcome): stored.excluded.outcome,
        col(E.onramp_session_id): stored.excluded.onramp_session_id,
        col(E.error): stored.excluded.error,
        col(E.attempts): col(E.attempts) + 1,
    }


def _record(postgres: bool) -> Any:
    stored = insert_into(EVENTS, postgres)
    return stored.on_conflict_do_update(
        index_elements=[col(E.id)], set_=_processed(stored), where=col(E.processed_at).is_(None)
    ).returning(col(E.id))


# Every column, each a parameter of its own name: an event stored once, or updated by its
# redelivery while it is not processed.
_RECORD = Sql.per_dialect(_record)
# On PostgreSQL with the merchant event of the change in the same statement; SQLite has
# no data-modifying CTE, and writes the event first (`insert_events`), then _RECORD.
_RECORD_WITH_NEW_EVENT = Sql(with_new_event(_record(True)), _record(False))


def _moved_and_recorded(status: str) -> Sql | None:
    """An event that moves its session to `status`, applied in one statement on
    PostgreSQL: the move (`repository.moving`), its merchant event and the event's log
    entry, with no transaction around them, one round trip instead of four. Only an
    event that moves its session, unprocessed so far (as `record_event` would find it)
    and naming no other session in its metadata: the statement then writes what
    `apply_update` and `record_event` would in a transaction, and returns the row as
    moved. For anything else it changes nothing and returns no row; the caller then
    applies the event in a transaction. A move to fulfilled schedules its delivery
    check in the same statement (`checks.with_check_of_move`)."""
    moving = sessions.moving(status)
    if moving is None:
        return None
    unprocessed = ~exists().where(col(E.id) == bindparam("id"), col(E.processed_at).is_not(None))
    moved = moving.where(sessions.UNCONTESTED, unprocessed).cte("moved")
    # Untyped: psycopg types each value itself, and the casts would take the statement
    # past psycopg's cache of converted queries (sql.py).
    logged: dict[str, Any] = {
        **{c.key: bindparam(c.key) for c in EVENTS.c},
        "onramp_session_id": moved.c.id,
        "processed_at": bindparam("received_at"),
        "outcome": const(APPLIED),
        "error": null(),
        "attempts": literal(1),
    }
    stored = insert_into(EVENTS, True)
    columns = [EVENTS.c[name] for name in logged]
    log = stored.from_select(columns, select(*logged.values()).select_from(moved))
    # Over any row, unlike `_RECORD`: a move this statement made is logged whatever a
    # concurrent delivery of the event logged before it (which saw no session to move).
    log = log.on_conflict_do_update(index_elements=[col(E.id)], set_=_processed(stored))
    statement = select(session_json(moved)).add_cte(log.cte("logged"))
    if status == LIFECYCLE.fulfilled:
        statement = with_check_of_move(statement, moved)
    return Sql(with_event_of_move(statement, moved), postgres_only=True)


_MOVED_AND_RECORDED = {
    status: statement
    for status in LIFECYCLE.statuses
    if (statement := _moved_and_recorded(status)) is not None
}


async def move_and_record(
    database: Database, event: StripeEvent, payload: bytes, now: datetime
) -> SessionRow | None:
    """The session as `event` moved it in one statement (`_moved_and_recorded`), with
    its merchant event and the event's log entry; None if that statement did nothing
    (the caller then applies the event in a transaction), or on SQLite."""
    update = event.update
    statement = _MOVED_AND_RECORDED.get(update.status) if update is not None else None
    if statement is None or update is None or database.pool is None:
        return None
    params = {
        **news_of(update, now),
        **_logged_values(event, payload, now),
        **move_event_values(now),
        **move_check_values(),
    }
    rows = await database.run_alone(statement, params)
    if not rows:
        return None
    committed = Committing(database.notices)
    moved = sessions.moved(committed, update.status, session_from_json(rows[0][0]))
    committed.committed()
    return moved


def _logged_values(event: StripeEvent, payload: bytes, now: datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "api_version": event.api_version,
        "created": event.created,
        "livemode": event.livemode,
        "stripe_session_id": event.update.stripe_session_id if event.update else None,
        "payload": payload.decode("utf-8"),
        "received_at": now,
    }


# Why an event received before `:before` is kept; the retention rules themselves are
# explained in service/webhooks/retention.py. Each condition is true or false, never
# NULL, so that `NOT (…)` below deletes only what is certainly not needed.
_NOT_PROCESSED = or_(
    col(E.processed_at).is_(None), col(E.outcome).is_(None), col(E.outcome) == const("failed")
)
_S = SESSIONS.alias("s")
_BY_OUR_ID = _S.c.id == col(E.onramp_session_id)
_BY_STRIPE_ID = _S.c.stripe_session_id == col(E.stripe_session_id)
_SESSION_KNOWN = or_(exists().where(_BY_OUR_ID), exists().where(_BY_STRIPE_ID))
_UNKNOWN_SESSION_RECENT = and_(
    col(E.received_at) >= bindparam("unknown_before"),
    or_(col(E.onramp_session_id).is_not(None), col(E.stripe_session_id).is_not(None)),
    not_(_SESSION_KNOWN),
)
NOT_NEEDED = "not_needed"
_OLD = col(E.received_at) < bindparam("before")


@dataclass(frozen=True)
class PruneStatements:
    """What the prune counts and deletes, for one lifecycle's meaning of settled."""

    by_need: Sql
    delete_not_needed: Sql


@cache
def prune_statements(lifecycle: Lifecycle) -> PruneStatements:
    unsettled = not_(settled(lifecycle, _S.c.status, _S.c.delivery_status))
    session_not_settled = or_(
        exists().where(_BY_OUR_ID, unsettled), exists().where(_BY_STRIPE_ID, unsettled)
    )
    need = case(
        (_NOT_PROCESSED, const("not_processed")),
        (session_not_settled, const("session_not_settled")),
        (_UNKNOWN_SESSION_RECENT, const("unknown_session_recent")),
        else_=const(NOT_NEEDED),
    ).label("need")
    by_need = Sql(select(need, func.count()).where(_OLD).group_by(literal_column(need.name)))
    needed = or_(_NOT_PROCESSED, session_not_settled, _UNKNOWN_SESSION_RECENT)
    chosen = select(col(E.id)).where(_OLD, not_(needed)).limit(bindparam("batch"))
    return PruneStatements(by_need, batch_delete(EVENTS.c.id, chosen))


async def old_events_by_need(
    database: Database,
    before: datetime,
    unknown_before: datetime,
    lifecycle: Lifecycle = LIFECYCLE,
) -> dict[str, int]:
    """How many events received before `before` are kept, by why, and how many are
    `NOT_NEEDED`."""
    params = {"before": before, "unknown_before": unknown_before}
    return {
        str(need): int(count)
        for need, count in await database.run_alone(prune_statements(lifecycle).by_need, params)
    }


async def delete_not_needed(
    database: Database,
    before: datetime,
    unknown_before: datetime,
    batch: int,
    lifecycle: Lifecycle = LIFECYCLE,
) -> int:
    """Delete at most `batch` events received before `before` that nothing needs, in a
    statement of their own (so row locks are held briefly); how many went."""
    params = {"before": before, "unknown_before": unknown_before, "batch": batch}
    return len(await database.run_alone(prune_statements(lifecycle).delete_not_needed, params))
