"""`GET /api/v1/onramp/sessions/{id}/events`: a session's live status for its owner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter
from litestar.response import ServerSentEvent

from service.auth.guards import BEARER_SECURITY, Wallet
from service.errors import NotFound
from service.live.provider import LiveServices
from service.live.stream import session_events
from service.onramp import repository
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.rules import is_session_id
from service.openapi import DATABASE_UNAVAILABLE, NOT_SIGNED_IN, RATE_LIMITED, problems
from service.ratelimit import client_ip

_SETTLED = (
    f"{' or '.join(f'`{s}`' for s in LIFECYCLE.exits)}, or its delivery has a verdict"
    f" ({', '.join(f'`{d}`' for d in LIFECYCLE.settling_deliveries)})"
)
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        max_length=32,
        description="The id of the last event received: a reconnect starts after it.",
    ),
]


@get(
    "/api/v1/onramp/sessions/{session_id:str}/events",
    tags=["onramp"],
    summary="A session's live status, as Server-Sent Events",
    description="Event `session` carries the session object: once at the start (unless "
    "`Last-Event-ID` names the current state), then on every change of its status or "
    "delivery, made by any replica. A comment line keeps the connection alive at least "
    f"every 15 s. The stream ends once the session is settled: {_SETTLED}, or when "
    "the token expires (sign in "
    "again and reconnect with `Last-Event-ID`). Opening a stream counts against the "
    "rate limit.",
    security=BEARER_SECURITY,
    responses=problems(
        {
            400: "Not a valid request (a `Last-Event-ID` this service did not send).",
            401: NOT_SIGNED_IN,
            429: RATE_LIMITED,
            404: "No such session for this wallet; another wallet's is not found either.",
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def session_event_stream(
    request: Request[Any, Any, Any],
    session_id: FromPath[str],
    wallet_token: Wallet,
    state: State,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    found = LiveServices.of(state)
    row = None
    if is_session_id(session_id):
        row = await repository.read_owned(found.database, session_id, wallet_token.wallet_address)
    if row is None:
        raise NotFound("No such session.")
    await found.rate_limiter.spend(
        "events", ip=client_ip(request), wallet=wallet_token.wallet_address
    )
    left = (wallet_token.expires_at - datetime.now(UTC)).total_seconds()
    events = session_events(
        found.changes,
        found.database,
        row,
        last_event_id,
        found.heartbeat_seconds,
        ends_at=asyncio.get_running_loop().time() + left,
    )
    return ServerSentEvent(events, headers={"X-Accel-Buffering": "no"})


routes = [session_event_stream]
