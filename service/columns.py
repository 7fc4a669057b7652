"""Column types, times and identifiers shared by every capability's tables."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeGuard

from sqlalchemy import ColumnElement, DateTime, Table
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.types import TypeDecorator

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 3339's date-time (section 5.6): `datetime.fromisoformat` alone takes far more.
_RFC3339 = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC to the second, as the service writes times: `2026-12-01T00:00:00Z`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time, with its offset; ValueError for anything else, a day that
    does not exist or a moment UTC cannot hold included."""
    if _RFC3339.fullmatch(value) is None:
        raise ValueError("not an RFC 3339 date-time")
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("a moment outside UTC's range") from error
    return moment


def is_unix_seconds(value: Any) -> TypeGuard[int]:
    """Whole seconds since the epoch that a datetime can hold: how Stripe's `created` and
    a JWT's times are written. Anything else, bools included, is not one."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return False
    try:
        datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def new_id(prefix: str) -> str:
    """A prefixed ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32.

    Ids sort by creation time, so "newest first" and cursor pagination need no second
    column. Hand-written because it is twelve lines and the ULID packages add a type
    this service would only turn back into a string.
    """
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` has the shape of an id `new_id(prefix)` makes."""
    return _id_shape(prefix).fullmatch(value) is not None


@lru_cache
def _id_shape(prefix: str) -> re.Pattern[str]:
    return re.compile(f"{re.escape(prefix)}_[{_CROCKFORD}]{{26}}")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL and on SQLite (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def text_limit(column: ColumnElement[Any]) -> int:
    """The most characters a text column holds, read from its type: what comes from
    outside is held to the models' limits, never to a second copy of them."""
    length = getattr(column.type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column} is not a text column of limited length")
    return length


def table_of(model: type[Any]) -> Table:
    """A SQLModel table's `Table`, typed: what statements are built on."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
