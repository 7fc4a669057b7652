"""The event log: insert-or-ignore on Stripe's event id, then record what was done."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.webhooks.events import StripeEvent
from service.webhooks.models import WebhookEvent


class EventLog:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add_if_new(self, event: StripeEvent, payload: bytes, now: datetime) -> bool:
        """Store the event unless its id is already stored; true if this call stored it.

        The primary key decides, so two concurrent deliveries of one event store it once.
        """
        dialect = postgresql if self.db.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(WebhookEvent)
            .values(
                id=event.id,
                type=event.type,
                api_version=event.api_version,
                created=event.created,
                livemode=event.livemode,
                stripe_session_id=event.update.stripe_session_id if event.update else None,
                payload=payload.decode("utf-8"),
                received_at=now,
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(col(WebhookEvent.id))
        )
        return (await self.db.exec(statement)).first() is not None

    async def get_one_or_none(self, event_id: str) -> WebhookEvent | None:
        return await self.db.get(WebhookEvent, event_id)

    async def record_outcome(
        self,
        event_id: str,
        outcome: str,
        now: datetime,
        onramp_session_id: str | None,
        error: str | None = None,
    ) -> None:
        await self.db.exec(
            update(WebhookEvent)
            .where(col(WebhookEvent.id) == event_id)
            .values(
                outcome=outcome,
                processed_at=now if outcome != "failed" else None,
                onramp_session_id=onramp_session_id,
                error=error,
                attempts=WebhookEvent.attempts + 1,
            )
        )

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
