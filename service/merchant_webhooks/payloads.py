"""What a merchant webhook event says: its JSON body, rendered from the session as the
change left it.

The outbox renders the body as it writes the event. A Stripe event applied in one
statement on PostgreSQL (service/webhooks/repository.py) keeps the moved row as JSON
instead, and the dispatcher renders the body from it here, with the same function: the
bytes are the same either way, and every retry renders the same bytes again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import msgspec

from service.columns import rfc3339
from service.onramp import schemas
from service.onramp.models import SessionRow

_encode = msgspec.json.Encoder().encode
_TIMES = tuple(
    field.name
    for field in msgspec.structs.fields(SessionRow)
    if datetime in (field.type, *get_args(field.type))
)


# What a merchant is never sent: the client secret is the buyer's, for Stripe's widget.
WITHHELD = "client_secret"
_WITHHELD_KEY = next(
    f.encode_name for f in msgspec.structs.fields(schemas.SessionPublic) if f.name == WITHHELD
)


def session_data(session: SessionRow) -> dict[str, Any]:
    """The session as its owner's GET returns it, without the client secret, with its
    `version` so that a receiver can drop an event older than one it has."""
    data: dict[str, Any] = msgspec.to_builtins(schemas.public(session))
    del data[_WITHHELD_KEY]
    data["version"] = schemas.version(session)
    return data


def render(kind: str, at: datetime, session: SessionRow) -> str:
    return _encode({"type": kind, "timestamp": rfc3339(at), "data": session_data(session)}).decode()


def session_from_json(row: str) -> SessionRow:
    """A session row as PostgreSQL's `row_to_json` wrote it (an event's snapshot without
    the `WITHHELD` column); its times in UTC, as a row read from the table has them,
    whatever the offset they were written with."""
    session = msgspec.json.decode(row, type=SessionRow)
    times = {name: getattr(session, name) for name in _TIMES}
    return msgspec.structs.replace(
        session, **{name: t.astimezone(UTC) for name, t in times.items() if t is not None}
    )


def stored_body(kind: str, at: datetime, body: str | None, session: str | None) -> str:
    """The body of a stored event: as written, or rendered from its session (the claim
    that renders it keeps it, so that every retry sends these bytes)."""
    if body is not None:
        return body
    if session is None:
        raise ValueError("a merchant event holds neither a body nor a session")
    return render(kind, at, session_from_json(session))
