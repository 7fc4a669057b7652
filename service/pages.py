"""Pages of rows newest first: a page's cursor is the id of the last row it handed out.

Ids sort by creation time (`columns.new_id`), so the next page is the rows whose id is
below the cursor's, and no row is skipped or repeated while new ones arrive. The id is
base64url-encoded to keep clients from building cursors of their own; anything that
does not decode to an id of the listed kind is refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, TypeVar

from litestar.params import QueryParameter

from service.columns import is_id
from service.errors import InvalidRequest

Row = TypeVar("Row")
# A route's `limit` query parameter.
PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1 to 100.")]


def cut(rows: list[Row], limit: int, id_of: Callable[[Row], str]) -> tuple[list[Row], str | None]:
    """A page of `limit` rows out of `limit + 1` read, and the cursor of the next page,
    None on the last one."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(id_of(rows[-1])) if more else None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, prefix: str) -> str | None:
    """The id (of `new_id(prefix)`) a page continues after; anything this service did
    not hand out is 400 `invalid_cursor`."""
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not is_id(decoded, prefix):
        message = "is not a cursor this service handed out"
        raise InvalidRequest(
            message, code="invalid_cursor", errors=[{"field": "cursor", "message": message}]
        )
    return decoded
