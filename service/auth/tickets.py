"""Stream tickets: what a browser's native `EventSource` opens a session's event stream
with, since it cannot send an Authorization header.

The owner (signed in with a Bearer token) asks for a ticket for one session; the stream
takes it once, in the query string, within `TICKET_TTL`. A used ticket is refused (401),
its stream's automatic reconnect included: a browser's `EventSource` then stops, and the
page asks for a new ticket to follow on.
Replicas share the tickets through the database: a signed token could not be single
use. The use is one conditional UPDATE ... RETURNING, so of two replicas handed the
same ticket exactly one opens a stream. Only each ticket's SHA-256 is stored, and the
ticket has a shape the log redaction recognises (`service/logs.py`), since a URL
carries it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlmodel import col

from service.auth.models import StreamTicket
from service.columns import table_of, utcnow
from service.database import Database
from service.logs import STREAM_TICKET_PREFIX
from service.sql import Sql, batch_delete

TICKET_TTL = timedelta(seconds=60)
# Unused tickets one wallet holds at most; asking for more drops its oldest. Only the
# wallet's own token can ask, so nobody else can make its tickets go.
TICKETS_PER_WALLET = 10
# The longest ticket a request may name: the prefix and 32 random bytes in base64url.
TICKET_MAX_LENGTH = 64

# Tickets are kept this long after they expire, then the retention job deletes them.
TICKET_RETENTION = timedelta(hours=1)

T = StreamTicket
TICKETS = table_of(StreamTicket)
_INSERT = Sql(
    insert(TICKETS).values(
        {
            col(T.digest): bindparam("ticket_digest"),
            col(T.wallet_address): bindparam("wallet"),
            col(T.session_id): bindparam("session"),
            col(T.issued_at): bindparam("issued"),
            col(T.expires_at): bindparam("expires"),
        }
    )
)
# Among a wallet's unused tickets only: a used one no longer counts against the wallet.
_UNUSED_OF_WALLET = (col(T.wallet_address) == bindparam("wallet"), col(T.used_at).is_(None))
_NEWEST = (
    select(col(T.digest))
    .where(*_UNUSED_OF_WALLET)
    .order_by(col(T.issued_at).desc(), col(T.digest).desc())
    .limit(bindparam("keep"))
)
_EVICT = Sql(delete(TICKETS).where(*_UNUSED_OF_WALLET, col(T.digest).not_in(_NEWEST)))
_FOR_SESSION = (
    col(T.digest) == bindparam("ticket_digest"),
    col(T.session_id) == bindparam("session"),
)
# The one use: of two requests (on any replicas) with one ticket, only one sets `used_at`.
_USE = Sql(
    update(TICKETS)
    .values({col(T.used_at): bindparam("now")})
    .where(*_FOR_SESSION, col(T.used_at).is_(None), col(T.expires_at) > bindparam("now"))
    .returning(col(T.wallet_address))
)
_EXPIRED = col(T.expires_at) < bindparam("before")
_COUNT_EXPIRED = Sql(select(func.count()).select_from(TICKETS).where(_EXPIRED))
_DELETE_EXPIRED = batch_delete(
    TICKETS.c.digest, select(col(T.digest)).where(_EXPIRED).limit(bindparam("batch"))
)


def digest_of(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    ticket: str
    expires_at: datetime


class StreamTickets:
    """Issues and uses tickets; `clock` gives the time (a test moves it on)."""

    def __init__(self, database: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock

    async def issue(self, wallet_address: str, session_id: str) -> IssuedTicket:
        """A new ticket for `session_id`, already found to be `wallet_address`'s."""
        now = self.clock()
        ticket = STREAM_TICKET_PREFIX + secrets.token_urlsafe(32)
        expires_at = now + TICKET_TTL
        values: dict[str, Any] = {
            "ticket_digest": digest_of(ticket),
            "wallet": wallet_address,
            "session": session_id,
            "issued": now,
            "expires": expires_at,
        }
        async with self.database.transaction() as sql:
            await sql.execute(_INSERT, values)
            await sql.execute(_EVICT, {"wallet": wallet_address, "keep": TICKETS_PER_WALLET})
        return IssuedTicket(ticket, expires_at)

    async def use(self, ticket: str, session_id: str) -> str | None:
        """Spend the ticket on a stream of `session_id`: its wallet, for the one request
        whose UPDATE set `used_at`; None when it is used, expired or for another session."""
        values = {"ticket_digest": digest_of(ticket), "session": session_id, "now": self.clock()}
        rows = await self.database.run_alone(_USE, values)
        return str(rows[0][0]) if rows else None


def expired_before(now: datetime) -> datetime:
    return now - TICKET_RETENTION


async def count_expired(database: Database, now: datetime) -> int:
    rows = await database.run_alone(_COUNT_EXPIRED, {"before": expired_before(now)})
    return int(rows[0][0])


async def delete_expired(database: Database, now: datetime, batch: int) -> int:
    """At most `batch` tickets past their retention, in a statement of their own; how
    many went."""
    params = {"before": expired_before(now), "batch": batch}
    return len(await database.run_alone(_DELETE_EXPIRED, params))
