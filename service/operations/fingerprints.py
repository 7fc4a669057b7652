"""Start-up warns when this replica's shared settings differ from the other replicas'.

Each process (API or worker) writes its settings fingerprint (settings_fingerprint.py)
to `replica_settings` under its REPLICA_NAME and role, and keeps its row's
`last_seen_at` fresh while it runs. At start-up it compares its fingerprint with every
row seen recently and logs one warning naming the replicas that differ and which
settings, never a value. A rolling change of a shared setting (a JWT secret rotated,
say) warns until the replicas on the old value have stopped and their rows grow old.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, delete, or_, select
from sqlmodel import col

from service.columns import table_of, utcnow
from service.database import Database, answer_within, error_line
from service.operations.models import ReplicaSettings
from service.operations.settings_fingerprint import Fingerprint, fingerprint_of
from service.settings import Settings
from service.sql import Sql, insert_into

log = structlog.get_logger("onramp.replicas")

# How often a running process says it is still there, and how recently a row must have
# been seen to count as a running replica's.
REFRESH = timedelta(minutes=1)
SEEN_RECENTLY = timedelta(minutes=5)
# Rows of replicas gone this long (a container's name is new on each deploy) are deleted.
FORGET_AFTER = timedelta(days=7)
# The longest the check delays a start-up: with the database away, getting a connection
# waits DATABASE_POOL_TIMEOUT_SECONDS (10 s by default), and /health would wait with it.
CHECK_IN_WITHIN_SECONDS = 3.0

R = ReplicaSettings
REPLICAS = table_of(ReplicaSettings)
_KEY = [col(R.replica_name), col(R.role)]
_ROW: dict[Any, Any] = {
    col(R.replica_name): bindparam("name"),
    col(R.role): bindparam("process_role"),
    col(R.fingerprint): bindparam("print"),
    col(R.digests): bindparam("setting_digests"),
    col(R.last_seen_at): bindparam("now"),
}
_SEEN = Sql.per_dialect(
    lambda postgres: (
        insert_into(REPLICAS, postgres)
        .values(_ROW)
        .on_conflict_do_update(
            index_elements=_KEY,
            set_={
                col(R.fingerprint): bindparam("print"),
                col(R.digests): bindparam("setting_digests"),
                col(R.last_seen_at): bindparam("now"),
            },
        )
    )
)
_OTHERS = Sql(
    select(col(R.replica_name), col(R.role), col(R.fingerprint), col(R.digests))
    .where(
        col(R.last_seen_at) >= bindparam("since"),
        or_(col(R.replica_name) != bindparam("name"), col(R.role) != bindparam("process_role")),
    )
    .order_by(*_KEY)
)
_FORGET = Sql(delete(REPLICAS).where(col(R.last_seen_at) < bindparam("before")))


class ReplicaCheckIn:
    """One process's row: `check_in` at start-up, `keep_seen` while it runs."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        role: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.name = settings.server.replica_name
        self.role = role
        self.fingerprint = fingerprint_of(settings)
        self.clock = clock

    def _values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "process_role": self.role,
            "print": self.fingerprint.value,
            "setting_digests": json.dumps(self.fingerprint.digests, sort_keys=True),
            "now": self.clock(),
        }

    async def check_in(self) -> list[dict[str, Any]]:
        """Write this process's row; the recently seen replicas whose shared settings
        differ, each with the names of the settings, logged as one warning."""
        values = self._values()
        now = values["now"]
        async with self.database.transaction() as sql:
            await sql.execute(_FORGET, {"before": now - FORGET_AFTER})
            await sql.execute(_SEEN, values)
            others = await sql.rows(
                _OTHERS,
                {"since": now - SEEN_RECENTLY, "name": self.name, "process_role": self.role},
            )
        differing = _differing(self.fingerprint, others)
        if differing:
            log.warning(
                "replica_settings_differ",
                replica=self.name,
                role=self.role,
                differing=differing,
            )
        return differing

    async def keep_seen(self) -> None:
        """Refresh this process's row every REFRESH until cancelled; a database away
        for a while only delays it."""
        while True:
            await asyncio.sleep(REFRESH.total_seconds())
            try:
                async with self.database.transaction() as sql:
                    await sql.execute(_SEEN, self._values())
            except Exception as error:  # an outage is reported where it hurts, not here
                log.debug("replica_seen_failed", error=error_line(error))


def _differing(mine: Fingerprint, others: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in others:
        if row["fingerprint"] == mine.value:
            continue
        names = mine.differing(json.loads(row["digests"]))
        if names:
            found.append({"replica": row["replica_name"], "role": row["role"], "settings": names})
    return found


@contextlib.asynccontextmanager
async def checked_in(database: Database, settings: Settings, role: str) -> AsyncIterator[None]:
    """Check in (warning of differing replicas) and keep the row fresh while the body
    runs. A database that cannot be reached leaves the check for the next start-up:
    the process starts all the same, as it would without this check."""
    replica = ReplicaCheckIn(database, settings, role)
    try:
        await answer_within(CHECK_IN_WITHIN_SECONDS, replica.check_in())
    except Exception as error:  # never stops a start-up: the check only advises
        log.warning("replica_settings_unchecked", replica=replica.name, error=error_line(error))
    refresh = asyncio.ensure_future(replica.keep_seen())
    try:
        yield
    finally:
        refresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresh
