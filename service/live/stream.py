"""A session's event stream: the session at once, again on every change of its status or
delivery, heartbeats between, and an end once nothing more will change.

Each event carries the whole session object. A stream sends every state its process
committed, in order (a quick `fulfillment_processing` is not hidden by the
`fulfillment_complete` after it); a change made by another process is read after its
notice, so two that land together there may arrive as the newer one alone. A client
that reconnects needs only the newest state: its `Last-Event-ID` says which one it
holds, and the stream starts with the current state unless that is the one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from operator import attrgetter
from typing import Any

import msgspec
from litestar.response import ServerSentEventMessage

from service.database import Database
from service.live.changes import SessionChanges
from service.onramp import repository, schemas
from service.onramp.lifecycle import LIFECYCLE, Lifecycle
from service.onramp.models import SessionRow

EVENT = "session"
_encode = msgspec.json.Encoder().encode


def event_id(row: SessionRow) -> str:
    """The row's version (`schemas.version`)."""
    return str(schemas.version(row))


# What a change is: the status or the delivery (not the time of the last check). The
# NOTIFY trigger (alembic 0009) fires on exactly these columns; a test holds it to this.
OBSERVED_COLUMNS = (
    "status",
    "transaction_hash",
    "destination_amount",
    "delivery_status",
    "delivery_confirmations",
    "delivery_block_number",
    "delivered_amount",
    "delivery_detail",
)
_observe = attrgetter(*OBSERVED_COLUMNS)


def observed(row: SessionRow) -> tuple[Any, ...]:
    observed_now: tuple[Any, ...] = _observe(row)
    return observed_now


def is_settled(row: SessionRow, lifecycle: Lifecycle = LIFECYCLE) -> bool:
    """Nothing more is expected (`Lifecycle.is_settled`)."""
    return lifecycle.is_settled(row.status, row.delivery_status)


def session_event(row: SessionRow) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=_encode(schemas.public(row)).decode(), event=EVENT, id=event_id(row)
    )


HEARTBEAT = ServerSentEventMessage(data=None, comment="heartbeat")
# An EventSource waits this long before it reconnects from a stream that reached
# LIVE_MAX_STREAM_SECONDS (the `retry:` field, in milliseconds).
RECONNECT_MS = 2000


def reconnect_hint(retry_ms: int) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=None, comment="time limit: reconnect with Last-Event-ID", retry=retry_ms
    )


async def session_events(
    changes: SessionChanges,
    database: Database,
    first: SessionRow,
    last_event_id: str | None,
    heartbeat_seconds: float,
    ends_at: float,
    lifecycle: Lifecycle = LIFECYCLE,
    *,
    retry_ms: int | None = None,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The stream of one session, already found to be the caller's (`first`), until it
    is settled or its time is up (`ends_at`, on the event loop's clock): the caller's
    token expires, or the stream has lasted LIVE_MAX_STREAM_SECONDS and its last
    message tells the client to reconnect in `retry_ms`."""
    loop = asyncio.get_running_loop()
    async with changes.watch(first.id) as watch:
        # Read again once watched: a change between the route's read and now is seen.
        row = await repository.read(database, first.id) or first
        sent: tuple[Any, ...] | None = None
        if last_event_id is not None and last_event_id == event_id(row):
            sent = observed(row)
        while True:
            if observed(row) != sent:
                sent = observed(row)
                yield session_event(row)
            if is_settled(row, lifecycle):
                return
            beat = loop.time() + heartbeat_seconds
            while not watch.changed.is_set():
                if loop.time() >= ends_at:
                    if retry_ms is not None:
                        yield reconnect_hint(retry_ms)
                    return  # the client resumes with Last-Event-ID (signed in again)
                try:
                    async with asyncio.timeout_at(min(beat, ends_at)):
                        await watch.changed.wait()
                except TimeoutError:
                    if loop.time() >= beat:
                        yield HEARTBEAT
                        beat = loop.time() + heartbeat_seconds
            # Rows come in order of commit from this process, and as read for changes
            # made elsewhere; reads may finish out of order: never step back.
            handed = watch.take()
            if handed is not None and handed.updated_at >= row.updated_at:
                row = handed
