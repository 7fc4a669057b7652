"""Persistence of delivery checks."""

from __future__ import annotations

from datetime import datetime

from service.sql import Sql, SqlTransaction

_SCHEDULE = Sql(
    "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, created_at)"
    " VALUES (:session_id, :now, 0, :now) ON CONFLICT (onramp_session_id) DO NOTHING",
    datetimes=("now",),
)


async def schedule_check(sql: SqlTransaction, onramp_session_id: str, now: datetime) -> None:
    """Make sure a check is due for the session; scheduling twice changes nothing."""
    await sql.execute(_SCHEDULE, {"session_id": onramp_session_id, "now": now})


_RECHECK = Sql(
    "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, created_at)"
    " VALUES (:session_id, :now, 0, :now) ON CONFLICT (onramp_session_id) DO UPDATE"
    " SET due_at = :now, finished_at = NULL, created_at = :now",
    datetimes=("now",),
)


async def recheck(sql: SqlTransaction, onramp_session_id: str, now: datetime) -> None:
    """Make the session's delivery due for checking now, even if it was decided."""
    await sql.execute(_RECHECK, {"session_id": onramp_session_id, "now": now})
