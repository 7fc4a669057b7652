"""Every statement on `webhook_events`, the event log: insert-or-ignore on Stripe's
event id, record what was done, and read events back for replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.database import Database
from service.sql import Sql, SqlTransaction, with_list
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
    conditions = (["received_at >= :since"] if since is not None else []) + (
        ["id IN (ids)"] if event_ids else []
    )
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    datetimes = ("since",) if since is not None else ()
    statement, params = with_list(_STORED + where + _ORDER, "ids", event_ids or [], datetimes)
    if since is not None:
        params["since"] = since
    return [StoredEvent(*row) for row in await database.run_alone(statement, params)]


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
