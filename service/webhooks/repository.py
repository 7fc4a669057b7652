"""The event log: insert-or-ignore on Stripe's event id, then record what was done."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.sql import Sql, SqlTransaction
from service.webhooks.events import StripeEvent
from service.webhooks.models import WebhookEvent


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


class EventLog:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def list(
        self, *, since: datetime | None = None, event_ids: list[str] | None = None
    ) -> list[WebhookEvent]:
        """Stored events in the order they arrived, for replay."""
        query = select(WebhookEvent)
        if since is not None:
            query = query.where(col(WebhookEvent.received_at) >= since)
        if event_ids:
            query = query.where(col(WebhookEvent.id).in_(event_ids))
        query = query.order_by(col(WebhookEvent.received_at), col(WebhookEvent.id))
        return list((await self.db.exec(query)).all())


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
