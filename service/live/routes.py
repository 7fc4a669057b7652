"""`GET /api/v1/onramp/sessions/{id}/events`: a session's live status for its owner, with
the wallet's token or a stream ticket (`POST .../events/ticket`, service/auth/tickets.py)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from service.auth.guards import BEARER_SECURITY, Wallet
from service.auth.tickets import TICKET_MAX_LENGTH, TICKET_TTL, TICKETS_PER_WALLET
from service.errors import NotFound, Unauthorized
from service.live.held_stream import HeldEventStream
from service.live.provider import LiveServices
from service.live.stream import EVENT, RECONNECT_MS, is_settled, session_events
from service.onramp import repository
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import SessionRow
from service.onramp.rules import is_session_id
from service.onramp.schemas import SessionPublic
from service.openapi import (
    DATABASE_UNAVAILABLE,
    EVENT_STREAM,
    NOT_SIGNED_IN,
    RATE_LIMITED,
    event_stream_operation,
    problems,
)
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


# The ticket's own refusal, worded once: a used, expired or other session's ticket.
_TICKET_REFUSED = (
    "This stream ticket is used, expired or for another session; ask for a new one "
    "(POST /api/v1/onramp/sessions/{id}/events/ticket)."
)
StreamTicket = Annotated[
    str | None,
    QueryParameter(
        name="ticket",
        max_length=TICKET_MAX_LENGTH,
        description="A ticket from `POST /api/v1/onramp/sessions/{id}/events/ticket`, "
        "instead of the Authorization header (which a browser's `EventSource` cannot "
        "send): it opens one stream of this session, within "
        f"{int(TICKET_TTL.total_seconds())} s of its issue. A used ticket is refused "
        "(401), the reconnect of its own stream included: ask for a new one.",
    ),
]


@get(
    "/api/v1/onramp/sessions/{session_id:str}/events",
    tags=["onramp"],
    summary="A session's live status, as Server-Sent Events",
    description="A `text/event-stream`, not JSON: event `session` carries the session object "
    "(JSON in its `data`): once at the start (unless `Last-Event-ID` names the current "
    "state), then on every change of its status or delivery, made by any replica. A comment "
    "line keeps the connection alive at least every 15 s. The stream ends once the session "
    f"is settled: {_SETTLED}; a settled session's stream answers 204 at once, so that an "
    "`EventSource` stops reconnecting (read the session instead). It also ends when the "
    "token expires (sign in again and reconnect with `Last-Event-ID`), and after "
    "`LIVE_MAX_STREAM_SECONDS` with a `retry:` hint (reconnect with `Last-Event-ID`; a "
    "stream opened with a ticket needs a new ticket, and starts with the current state). "
    "Send the wallet's token as `Authorization: Bearer`, or, from a browser's "
    "`EventSource`, a `ticket`. Opening a stream counts against the rate limit; a wallet "
    "and a client network may each keep only so many streams open "
    "(`LIVE_MAX_STREAMS_PER_WALLET`, `LIVE_MAX_STREAMS_PER_CLIENT`), and a server only "
    "`LIVE_MAX_STREAMS`.",
    operation_class=event_stream_operation(EVENT, SessionPublic.__name__),
    # The Bearer token, or no header at all with a ticket in the query.
    security=[*BEARER_SECURITY, {}],
    responses={
        200: ResponseSpec(
            str,
            description="Server-Sent Events (`text/event-stream`, not JSON): events "
            "`session`, each with an `id:` (its version) and `data:` the session object "
            "in JSON, as `SessionPublic` describes it (`itemSchema`); comment lines between.",
            media_type=EVENT_STREAM,
            generate_examples=False,
        ),
        204: ResponseSpec(None, description="The session is settled: nothing more will be sent."),
        **problems(
            {
                400: "Not a valid request (a `Last-Event-ID` this service did not send).",
                401: f"{NOT_SIGNED_IN[:-1]}; or a used, expired or other session's ticket.",
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
    state: State,
    last_event_id: LastEventId = None,
    ticket: StreamTicket = None,
) -> Response[Any]:
    found = LiveServices.of(state)
    if ticket is not None:
        # Spent before anything else: a used ticket is refused, a settled session's too.
        ticket_wallet = await found.tickets.use(ticket, session_id)
        if ticket_wallet is None:
            raise Unauthorized(_TICKET_REFUSED)
        wallet = ticket_wallet
        # A ticket's stream lasts its time; it is not tied to the token that asked.
        token_left = math.inf
    else:
        wallet_token = found.wallet_of(request)
        wallet = wallet_token.wallet_address
        token_left = (wallet_token.expires_at - datetime.now(UTC)).total_seconds()
    row = await _owned(found, session_id, wallet)
    ip = client_ip(request)
    await found.rate_limiter.spend("events", ip=ip, wallet=wallet)
    if is_settled(row):
        return Response(None, status_code=HTTP_204_NO_CONTENT)
    slot = found.slots.take(wallet, client_network(ip))
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


class TicketIssued(msgspec.Struct, rename="camel"):
    """A stream ticket: `GET /api/v1/onramp/sessions/{id}/events?ticket=<ticket>`."""

    ticket: str
    expires_at: datetime


@post(
    "/api/v1/onramp/sessions/{session_id:str}/events/ticket",
    status_code=HTTP_201_CREATED,
    tags=["onramp"],
    summary="A ticket to open the session's event stream without an Authorization header",
    description="For a browser's native `EventSource`, which cannot send the Bearer "
    "token: open `GET /api/v1/onramp/sessions/{id}/events?ticket=<ticket>` with it. "
    "Single use, for this session only, valid for "
    f"{int(TICKET_TTL.total_seconds())} s (`expiresAt`); ask for a new one "
    "for each stream. A wallet holds at most "
    f"{TICKETS_PER_WALLET} unused tickets: asking for more drops its oldest. Counts "
    "against the rate limit.",
    security=BEARER_SECURITY,
    responses=problems(
        {
            400: "Not a valid request.",
            401: NOT_SIGNED_IN,
            404: "No such session for this wallet; another wallet's is not found either.",
            429: RATE_LIMITED,
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def issue_stream_ticket(
    request: Request[Any, Any, Any], session_id: FromPath[str], wallet_token: Wallet, state: State
) -> TicketIssued:
    found = LiveServices.of(state)
    wallet = wallet_token.wallet_address
    await _owned(found, session_id, wallet)
    await found.rate_limiter.spend("event tickets", ip=client_ip(request), wallet=wallet)
    issued = await found.tickets.issue(wallet, session_id)
    return TicketIssued(issued.ticket, issued.expires_at)


async def _owned(found: LiveServices, session_id: str, wallet: str) -> SessionRow:
    """The wallet's session, or 404 as for any session that is not its own."""
    row = None
    if is_session_id(session_id):
        row = await repository.read_owned(found.database, session_id, wallet)
    if row is None:
        raise NotFound("No such session.")
    return row


routes = [session_event_stream, issue_stream_ticket]
