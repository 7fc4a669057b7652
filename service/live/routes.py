"""`GET /api/v1/onramp/sessions/{id}/events`: a session's live status for its owner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from service.auth.guards import BEARER_SECURITY, Wallet
from service.errors import NotFound
from service.live.held_stream import HeldEventStream
from service.live.provider import LiveServices
from service.live.stream import RECONNECT_MS, is_settled, session_events
from service.onramp import repository
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.rules import is_session_id
from service.openapi import DATABASE_UNAVAILABLE, NOT_SIGNED_IN, RATE_LIMITED, problems
from service.ratelimit import client_ip, client_network

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
    f"every 15 s. The stream ends once the session is settled: {_SETTLED}; a settled "
    "session's stream answers 204 at once, so that an `EventSource` stops reconnecting "
    "(read the session instead). It also ends when the token expires (sign in again and "
    "reconnect with `Last-Event-ID`), and after `LIVE_MAX_STREAM_SECONDS` with a "
    "`retry:` hint (reconnect with `Last-Event-ID`). Opening a stream counts against the "
    "rate limit; a wallet and a client network may each keep only so many streams open "
    "(`LIVE_MAX_STREAMS_PER_WALLET`, `LIVE_MAX_STREAMS_PER_CLIENT`), and a server only "
    "`LIVE_MAX_STREAMS`.",
    security=BEARER_SECURITY,
    responses={
        204: ResponseSpec(None, description="The session is settled: nothing more will be sent."),
        **problems(
            {
                400: "Not a valid request (a `Last-Event-ID` this service did not send).",
                401: NOT_SIGNED_IN,
                429: f"{RATE_LIMITED[:-1]}; or this wallet or client network has as many "
                "streams open as it may (`too_many_streams`, with `Retry-After`).",
                404: "No such session for this wallet; another wallet's is not found either.",
                503: f"{DATABASE_UNAVAILABLE[:-1]}; or this server holds as many streams as "
                "it may (`too_many_streams`, with `Retry-After`).",
            }
        ),
    },
)
async def session_event_stream(
    request: Request[Any, Any, Any],
    session_id: FromPath[str],
    wallet_token: Wallet,
    state: State,
    last_event_id: LastEventId = None,
) -> Response[Any]:
    found = LiveServices.of(state)
    wallet = wallet_token.wallet_address
    row = None
    if is_session_id(session_id):
        row = await repository.read_owned(found.database, session_id, wallet)
    if row is None:
        raise NotFound("No such session.")
    ip = client_ip(request)
    await found.rate_limiter.spend("events", ip=ip, wallet=wallet)
    if is_settled(row):
        return Response(None, status_code=HTTP_204_NO_CONTENT)
    slot = found.slots.take(wallet, client_network(ip))
    token_left = (wallet_token.expires_at - datetime.now(UTC)).total_seconds()
    time_left = found.settings.max_stream_seconds
    events = session_events(
        found.changes,
        found.database,
        row,
        last_event_id,
        found.settings.heartbeat_seconds,
        ends_at=asyncio.get_running_loop().time() + min(token_left, time_left),
        # Past its time a stream asks its client back; past its token, there is no point.
        retry_ms=RECONNECT_MS if time_left < token_left else None,
    )
    return HeldEventStream(events, slot, headers={"X-Accel-Buffering": "no"})


routes = [session_event_stream]
