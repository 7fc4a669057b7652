"""Every statement on `webhook_events`, the event log: insert-or-ignore on Stripe's
event id, record what was done, read events back for replay, and drop old ones that no
session needs (service/webhooks/retention.py says which)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from service.database import Database
from service.onramp.lifecycle import LIFECYCLE, Lifecycle
from service.onramp.models import settled_sql
from service.sql import BatchDelete, Sql, SqlTransaction, with_list
from service.webhooks.events import StripeEvent


async def record_event(
    sql: SqlTransaction,
    event: StripeEvent,
    payload: bytes,
    now: datetime,
    outcome: str,
    onramp_session_id: str | None,
    error: str | None = None,
) -> bool:
    """Store the event with what processing did; false if it was already processed.

    Stripe's event id is the primary key, so two concurrent deliveries of one event
    store it once: the second waits on the first and then finds it processed. An event
    stored as `failed` (or never processed) is updated by its redelivery.
    """
    stored = await sql.scalar(
        _RECORD,
        {
            "id": event.id,
            "type": event.type,
            "api_version": event.api_version,
            "created": event.created,
            "livemode": event.livemode,
            "sid": event.update.stripe_session_id if event.update else None,
            "oid": onramp_session_id,
            "payload": payload.decode("utf-8"),
            "now": now,
            "processed_at": None if outcome == "failed" else now,
            "outcome": outcome,
            "error": error,
        },
    )
    return stored is not None


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    payload: str


_STORED = "SELECT id, type, payload FROM webhook_events"
_ORDER = " ORDER BY received_at, id"


async def stored_events(
    database: Database, *, since: datetime | None = None, event_ids: list[str] | None = None
) -> list[StoredEvent]:
    """Stored events in the order they arrived, for replay."""
    statement, params = stored_events_statement(since, event_ids)
    return [StoredEvent(*row) for row in await database.run_alone(statement, params)]


def stored_events_statement(
    since: datetime | None, event_ids: list[str] | None
) -> tuple[Sql, dict[str, Any]]:
    conditions = (["received_at >= :since"] if since is not None else []) + (
        ["id IN (ids)"] if event_ids else []
    )
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    datetimes = ("since",) if since is not None else ()
    statement, params = with_list(_STORED + where + _ORDER, "ids", event_ids or [], datetimes)
    if since is not None:
        params["since"] = since
    return statement, params


_RECORD_OUTCOME = Sql(
    "UPDATE webhook_events SET outcome = :outcome, processed_at = :now,"
    " onramp_session_id = COALESCE(:oid, onramp_session_id), error = NULL,"
    " attempts = attempts + 1 WHERE id = :id",
    datetimes=("now",),
)


async def record_outcome(
    sql: SqlTransaction, event_id: str, outcome: str, session_id: str | None, now: datetime
) -> None:
    """What a replay did with a stored event."""
    values = {"id": event_id, "outcome": outcome, "oid": session_id, "now": now}
    await sql.execute(_RECORD_OUTCOME, values)


# Written once as SQL (PostgreSQL and SQLite share the upsert syntax): this statement
# runs for every delivery, and building it through the ORM cost more than running it.
_RECORD = Sql(
    "INSERT INTO webhook_events (id, type, api_version, created, livemode, stripe_session_id,"
    " onramp_session_id, payload, received_at, processed_at, outcome, error, attempts)"
    " VALUES (:id, :type, :api_version, :created, :livemode, :sid, :oid, :payload, :now,"
    " :processed_at, :outcome, :error, 1)"
    " ON CONFLICT (id) DO UPDATE SET processed_at = excluded.processed_at,"
    " outcome = excluded.outcome, onramp_session_id = excluded.onramp_session_id,"
    " error = excluded.error, attempts = webhook_events.attempts + 1"
    " WHERE webhook_events.processed_at IS NULL"
    " RETURNING id",
    datetimes=("created", "now", "processed_at"),
)


# Why an event received before `:before` is kept; the retention rules themselves are
# explained in service/webhooks/retention.py. Each condition is true or false, never
# NULL, so that `NOT (…)` below deletes only what is certainly not needed.
_NOT_PROCESSED = "(e.processed_at IS NULL OR e.outcome IS NULL OR e.outcome = 'failed')"
_SESSION_KNOWN = (
    "(EXISTS (SELECT 1 FROM onramp_sessions s WHERE s.id = e.onramp_session_id)"
    " OR EXISTS (SELECT 1 FROM onramp_sessions s WHERE s.stripe_session_id = e.stripe_session_id))"
)
_UNKNOWN_SESSION_RECENT = (
    "(e.received_at >= :unknown_before"
    " AND (e.onramp_session_id IS NOT NULL OR e.stripe_session_id IS NOT NULL)"
    f" AND NOT {_SESSION_KNOWN})"
)
NOT_NEEDED = "not_needed"


@dataclass(frozen=True)
class PruneStatements:
    """What the prune counts and deletes, for one lifecycle's meaning of settled."""

    by_need: Sql
    delete_not_needed: BatchDelete


@cache
def prune_statements(lifecycle: Lifecycle) -> PruneStatements:
    settled = f"({settled_sql(lifecycle, 's')})"
    session_not_settled = (
        "(EXISTS (SELECT 1 FROM onramp_sessions s WHERE s.id = e.onramp_session_id"  # noqa: S608
        f" AND NOT {settled}) OR EXISTS (SELECT 1 FROM onramp_sessions s"
        f" WHERE s.stripe_session_id = e.stripe_session_id AND NOT {settled}))"
    )
    by_need = Sql(
        f"SELECT CASE WHEN {_NOT_PROCESSED} THEN 'not_processed'"  # noqa: S608 - constants
        f" WHEN {session_not_settled} THEN 'session_not_settled'"
        f" WHEN {_UNKNOWN_SESSION_RECENT} THEN 'unknown_session_recent'"
        f" ELSE '{NOT_NEEDED}' END AS need, COUNT(*)"
        " FROM webhook_events e WHERE e.received_at < :before GROUP BY 1",
        datetimes=("before", "unknown_before"),
    )
    delete_not_needed = BatchDelete(
        "webhook_events",
        "id",
        "SELECT e.id FROM webhook_events e WHERE e.received_at < :before"  # noqa: S608
        f" AND NOT ({_NOT_PROCESSED} OR {session_not_settled} OR {_UNKNOWN_SESSION_RECENT})"
        " LIMIT :batch",
        ("before", "unknown_before"),
    )
    return PruneStatements(by_need, delete_not_needed)


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
    statement = prune_statements(lifecycle).delete_not_needed.on(database.pool is not None)
    return len(await database.run_alone(statement, params))
