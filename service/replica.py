"""Reads on the replica of DATABASE_READ_URL, while it can answer them right.

Listings and reports read a replica so as not to load the primary; a read that must see
the caller's own writes (a session just created, its live status) stays on the primary,
which the replica follows a little behind. A replica answers
them as the primary would only at the primary's schema revision (a standby replays a
migration a little after the deploy that ran it; a logical replica may never), and only
while it answers at all. So a read goes to the replica while its last check found it at
the primary's revision, and waits for it at most its share of DATABASE_READ_TIMEOUT_MS;
otherwise the read goes to the primary, within what is left of that time, or is 503
`database_unavailable`. The replica is checked on first use, again every
`RECHECK_SECONDS` in the background, at once after a read found a column or a table
missing there, and on every `GET /api/v1/admin/ready`, which reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from psycopg.errors import QueryCanceled, ReadOnlySqlTransaction, UndefinedColumn, UndefinedTable
from sqlalchemy import case, func, select

from service.database import (
    Database,
    answer_within,
    failure_detail,
    never_migrated,
)
from service.errors import DatabaseUnavailable
from service.outages import replica_fallbacks
from service.settings import DatabaseSettings
from service.sql import ALEMBIC_VERSION, SELECT_REVISION, Sql

RECHECK_SECONDS = 5.0
# What of a read's DATABASE_READ_TIMEOUT_MS the replica may take (its statement timeout
# too); the rest is the primary's, should the replica fail.
REPLICA_SHARE = 0.5
NEVER = float("-inf")

Status = Literal["unchecked", "ok", "behind", "unavailable"]
# A replica's statement failing for these went no further than the schema.
_BEHIND = (UndefinedColumn, UndefinedTable)
_FAILED = (TimeoutError, DatabaseUnavailable, *_BEHIND)

# Where the replica stands: its schema revision, whether it is a standby, and how far its
# replay is behind (0 once it has replayed all it received; NULL on a database that is
# not a standby, a primary used as a replica).
_STANDING = Sql(
    select(
        select(ALEMBIC_VERSION.c.version_num).scalar_subquery(),
        func.pg_is_in_recovery(),
        case(
            (func.pg_last_wal_receive_lsn() == func.pg_last_wal_replay_lsn(), 0),
            else_=func.extract("epoch", func.now() - func.pg_last_xact_replay_timestamp()),
        ),
    )
)


@dataclass(frozen=True, slots=True)
class Standing:
    """The replica as last checked (`checked_at` on `time.monotonic()`)."""

    status: Status = "unchecked"
    checked_at: float = NEVER
    revision: str | None = None
    primary_revision: str | None = None
    standby: bool | None = None
    lag_seconds: float | None = None
    detail: str | None = None

    def due(self, now: float) -> bool:
        return now - self.checked_at >= RECHECK_SECONDS

    def report(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reads": "replica" if self.status == "ok" else "primary",
            "revision": self.revision,
            "primaryRevision": self.primary_revision,
            "standby": self.standby,
            "lagSeconds": self.lag_seconds,
            **({"detail": self.detail} if self.detail else {}),
        }


def judged(revision: str | None, primary_revision: str | None) -> Status:
    """Whether a replica at `revision` answers this release's reads. The primary's
    revision is the measure, not this release's head: every other statement of the
    release runs on the primary, so a replica at its revision answers them alike."""
    if primary_revision is None:
        return "unchecked"
    return "ok" if revision == primary_revision else "behind"


class ReplicaReads(Database):
    """The `Database` that listings and reports read: `run_alone` on the replica while
    it stands at the primary's revision and answers in time, on the primary otherwise.
    Anything else asked of it (a transaction) runs on the primary.

    With `bounded` false (a report that reads a whole range) a read may take the
    replica as long as it needs; its revision is checked all the same."""

    def __init__(self, primary: Database, replica: Database, *, bounded: bool = True) -> None:
        # Not Database.__init__: what is not routed runs on the primary's own engine and
        # pool, which their owner opens and disposes of.
        self.settings = primary.settings
        self.engine = primary.engine
        self.pool = primary.pool
        self.notices = primary.notices
        self.primary = primary
        self.replica = replica
        self.budget = primary.settings.read_timeout_ms / 1000
        self.share = self.budget * REPLICA_SHARE
        self.bounded = bounded
        self.standing = Standing()
        self._checking: asyncio.Task[Standing] | None = None

    @classmethod
    def of(
        cls, settings: DatabaseSettings, primary: Database, *, bounded: bool = True
    ) -> ReplicaReads | None:
        """The reads of DATABASE_READ_URL's replica; None when it names none."""
        replica = settings.replica
        if replica is None:
            return None
        timeout_ms = round(settings.read_timeout_ms * REPLICA_SHARE) if bounded else 0
        return cls(primary, Database(replica, statement_timeout_ms=timeout_ms), bounded=bounded)

    async def open(self) -> None:
        """Both pools, and the replica's first check under way."""
        await self.primary.open()
        await self.replica.open()
        if self._checking is None:
            self._check_now()

    async def run_alone(self, statement: Sql, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        started = time.monotonic()
        passed_over = await self._passed_over()
        if passed_over is not None:
            replica_fallbacks.labels(passed_over).inc()
            return await self.primary.run_alone(statement, params)
        try:
            work = self.replica.run_alone(statement, params)
            return await (answer_within(self.share, work) if self.bounded else work)
        except _FAILED as error:
            if _a_write(error):
                raise  # a write sent to the reads: refused, not retried on the primary
            reason = self._failed(error)
        replica_fallbacks.labels(reason).inc()
        if not self.bounded:
            return await self.primary.run_alone(statement, params)
        left = self.budget - (time.monotonic() - started)
        try:
            return await answer_within(left, self.primary.run_alone(statement, params))
        except TimeoutError as error:
            raise DatabaseUnavailable(error) from error

    async def report(self) -> dict[str, Any]:
        """The replica checked now, for the operators' readiness detail; what the check
        finds steers the reads at once."""
        return (await asyncio.shield(self._check_now())).report()

    async def dispose(self) -> None:
        """The replica's pool and check; the primary stays with its owner."""
        if self._checking is not None and not self._checking.done():
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
        await self.replica.dispose()

    async def _passed_over(self) -> Status | None:
        """Why this read goes to the primary, or None to read the replica. The first
        read waits for the first check; later ones use the last check's finding while
        a new one, when due, runs beside them."""
        if self.standing.checked_at == NEVER:
            await asyncio.shield(self._check_now())
        elif self.standing.due(time.monotonic()):
            self._check_now()
        status = self.standing.status
        return None if status == "ok" else status

    def _failed(self, error: BaseException) -> Status:
        """Record what a read on the replica met; a schema found behind is checked again
        at once, to learn the replica's revision."""
        status: Status = "behind" if isinstance(error, _BEHIND) else "unavailable"
        detail = "timed out" if _timed_out(error) else failure_detail(error)
        self.standing = replace(
            self.standing, status=status, checked_at=time.monotonic(), detail=detail
        )
        if status == "behind":
            self._check_now()
        return status

    def _check_now(self) -> asyncio.Task[Standing]:
        """The check under way, or a new one."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check())
        return self._checking

    async def _check(self) -> Standing:
        (revision, standby, lag, detail), primary_revision = await asyncio.gather(
            self._replica_standing(), self._primary_revision()
        )
        status: Status = "unavailable" if detail is not None else judged(revision, primary_revision)
        self.standing = Standing(
            status,
            time.monotonic(),
            revision,
            primary_revision,
            standby,
            lag,
            detail if status == "unavailable" else None,
        )
        return self.standing

    async def _replica_standing(
        self,
    ) -> tuple[str | None, bool | None, float | None, str | None]:
        """Revision, standby or not, replay lag, and why it could not be read."""
        try:
            rows = await answer_within(self.share, self.replica.run_alone(_STANDING, {}))
        except Exception as error:  # a check reports any failure, it never raises
            if never_migrated(error):
                return None, None, None, None
            return None, None, None, "timed out" if _timed_out(error) else failure_detail(error)
        revision, standby, lag = rows[0]
        return revision, standby, None if lag is None else round(float(lag), 3), None

    async def _primary_revision(self) -> str | None:
        """The primary's revision now, or as last known while it does not answer."""
        try:
            rows = await answer_within(self.share, self.primary.run_alone(SELECT_REVISION, {}))
        except Exception:  # the primary's own outage is /ready's to report
            return self.standing.primary_revision
        return str(rows[0][0]) if rows else None


def _a_write(error: BaseException) -> bool:
    return isinstance(error, DatabaseUnavailable) and isinstance(
        error.__cause__, ReadOnlySqlTransaction
    )


def _timed_out(error: BaseException) -> bool:
    cause = error.__cause__ if isinstance(error, DatabaseUnavailable) else error
    return isinstance(error, TimeoutError) or isinstance(cause, QueryCanceled)
