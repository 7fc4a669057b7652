"""The outbox: an event for each session change a merchant hears of, written in the
transaction of the change, with a delivery to each enabled endpoint that takes its type.

This module is what callers hand down to onramp as its `SessionEvents`
(`service/onramp/events.py`): `apply_update` tells it of status moves,
`record_verdicts` of changed verdicts. A change rolled back takes its event with it; a
change committed has its event and deliveries committed too, for the dispatcher to send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.columns import new_id
from service.merchant_webhooks import repository
from service.merchant_webhooks.models import EVENT_ID_PREFIX
from service.merchant_webhooks.payloads import render
from service.merchant_webhooks.repository import NewEvent
from service.merchant_webhooks.rules import DELIVERY_DECIDED, SESSION_UPDATED
from service.onramp.events import Changed, SessionChange
from service.onramp.models import SessionRow
from service.onramp.repository import sessions_to_deliver
from service.sql import SqlTransaction


def event_type(change: SessionChange, session: SessionRow) -> str | None:
    """What a change is called to a merchant; None for a change merchants hear nothing
    of (a delivery back to `pending`)."""
    if change.changed == Changed.STATUS:
        return SESSION_UPDATED
    return DELIVERY_DECIDED.get(session.delivery_status)


def move_event_values(now: datetime) -> dict[str, Any]:
    """The parameters of `repository.with_event_of_move`: a status move's event, as
    `event_type` names it."""
    return {"new_id": new_id(EVENT_ID_PREFIX), "new_type": SESSION_UPDATED, "new_created_at": now}


async def record(sql: SqlTransaction, changes: list[SessionChange], now: datetime) -> None:
    """The events of `changes`, and their deliveries, in the caller's transaction."""
    await repository.insert_events(sql, await new_events(sql, changes, now))


class Held:
    """The outbox for a transaction that ends with a statement of its own (a Stripe
    event's log entry): the events are built as the change is made and written with
    that statement (`repository.with_new_event`), a round trip fewer for each event."""

    def __init__(self) -> None:
        self.events: list[NewEvent] = []

    async def record(
        self, sql: SqlTransaction, changes: list[SessionChange], now: datetime
    ) -> None:
        self.events += await new_events(sql, changes, now)


async def new_events(
    sql: SqlTransaction, changes: list[SessionChange], now: datetime
) -> list[NewEvent]:
    """The event merchants hear of for each of `changes`, if any."""
    sessions = {c.session_id: c.session for c in changes if c.session is not None}
    unread = {c.session_id for c in changes} - sessions.keys()
    sessions |= await sessions_to_deliver(sql, sorted(unread))
    events = []
    for change in changes:
        session = sessions.get(change.session_id)
        kind = event_type(change, session) if session is not None else None
        if session is not None and kind is not None:
            events.append(
                NewEvent(new_id(EVENT_ID_PREFIX), kind, session.id, render(kind, now, session), now)
            )
    return events
