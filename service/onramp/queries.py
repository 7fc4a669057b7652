"""Reading sessions: one session for its wallet, and pages of sessions newest first. The
one implementation the dApp's routes, the operators' route and CLI, and the demo use."""

from __future__ import annotations

from dataclasses import dataclass

from service.database import Database
from service.errors import NotFound
from service.onramp import repository, schemas
from service.onramp.models import SESSION_ID_PREFIX, SessionRow
from service.onramp.repository import Chosen
from service.onramp.rules import check_status_filter, is_session_id
from service.pages import cut, decode_cursor


@dataclass(frozen=True)
class Page:
    sessions: list[SessionRow]
    next_cursor: str | None


async def read_owned(database: Database, session_id: str, wallet: str) -> schemas.SessionPublic:
    """The wallet's own session; another wallet's is as absent as a missing one."""
    if not is_session_id(session_id):
        raise NotFound("No such session.")
    row = await repository.read_owned(database, session_id, wallet)
    if row is None:
        raise NotFound("No such session.")
    return schemas.public(row)


async def page(
    database: Database,
    *,
    wallet_address: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    """One page, newest first; `next_cursor` is None on the last page."""
    before = decode_cursor(cursor, SESSION_ID_PREFIX)
    chosen = Chosen(wallet_address, check_status_filter(status), before)
    rows = await repository.list_sessions(database, chosen, limit=limit + 1)
    return Page(*cut(rows, limit, lambda row: row.id))
