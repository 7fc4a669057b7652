"""The retention job on a schedule, beside the delivery worker's rounds.

Every process that runs the worker (`onramp worker`, or `onramp serve`'s) runs the job
every `RETENTION_INTERVAL_SECONDS`, the first time one interval after it starts. On
PostgreSQL a session advisory lock lets one process at a time do it: the others skip
that turn. The job is safe to run twice at once anyway (each batch deletes what is
still there), so the lock saves work, not correctness; SQLite needs none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from psycopg import AsyncConnection
from sqlalchemy import BigInteger, bindparam, func, select

from service.columns import utcnow
from service.database import Database
from service.errors import DatabaseUnavailable
from service.retention.job import run_retention
from service.settings import RetentionSettings
from service.sql import Sql

log = structlog.get_logger("onramp.retention")

# An arbitrary number of this service's own: pg_try_advisory_lock's key for the job.
RETENTION_LOCK = 0x6F6E72616D70
_TRY_LOCK = Sql(select(func.pg_try_advisory_lock(bindparam("key", type_=BigInteger))))
_UNLOCK = Sql(select(func.pg_advisory_unlock(bindparam("key", type_=BigInteger))))


class RetentionSchedule:
    def __init__(self, database: Database, settings: RetentionSettings) -> None:
        self.database = database
        self.settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        """Run the job every interval until `stop` is set; never when the interval is 0.
        A failed run is logged and the next one comes at its time."""
        interval = self.settings.interval_seconds
        if interval <= 0:
            return
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
                return
            try:
                await self.run_once()
            except DatabaseUnavailable as error:
                log.warning("retention_run_failed", error=error.cause)
            except Exception:  # nothing may end the worker
                log.exception("retention_run_failed")

    async def run_once(self) -> bool:
        """Run the job unless another process is running it; whether this one did."""
        async with self._alone() as alone:
            if alone:
                await run_retention(self.database, self.settings, now=utcnow())
            return alone

    @contextlib.asynccontextmanager
    async def _alone(self) -> AsyncIterator[bool]:
        if self.database.pool is None:
            yield True
            return
        # The lock belongs to this connection's session, held aside for the run.
        async with self.database.pool_connection() as connection:
            cursor = await connection.execute(_TRY_LOCK.psycopg_query, {"key": RETENTION_LOCK})
            row = await cursor.fetchone()
            alone = bool(row and row[0])
            try:
                yield alone
            finally:
                if alone:
                    await _unlock(connection)


async def _unlock(connection: AsyncConnection[Any]) -> None:
    try:
        await connection.execute(_UNLOCK.psycopg_query, {"key": RETENTION_LOCK})
    except BaseException:
        await connection.close()  # the session's end releases its locks
        raise
