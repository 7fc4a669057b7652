"""Reading the trail: pages newest first, for the route and `onramp audit list`."""

from __future__ import annotations

from datetime import datetime

import msgspec

from service.audit import repository
from service.audit.models import ACTION_ID_PREFIX, ActionRecord
from service.database import Database
from service.pages import cut, decode_cursor


class ActionPage(msgspec.Struct, rename="camel"):
    items: list[ActionRecord]
    next_cursor: str | None


async def page(
    database: Database, *, since: datetime | None, cursor: str | None, limit: int
) -> ActionPage:
    """One page newest first, from `since` (a moment with its zone) on; `nextCursor`
    is None on the last page."""
    before = decode_cursor(cursor, ACTION_ID_PREFIX)
    rows = await repository.newest(database, since=since, before_id=before, limit=limit + 1)
    return ActionPage(*cut(rows, limit, lambda row: row.id))
