"""The database: one transaction idiom, single statements, and the readiness probe.

SQLite is the zero-set-up default (one file beside the working directory), through
SQLAlchemy's async engine; PostgreSQL, what production runs, through psycopg 3's own
connection pool, the one pool the service holds to it. Every statement is built once
from the models for both (service/sql.py) and runs through `transaction()` or
`run_alone()`, which turn any failure to reach the database into `DatabaseUnavailable`.
Every connection to PostgreSQL bounds its statements (DATABASE_STATEMENT_TIMEOUT_MS) and
notices a peer gone silent (TCP keepalives), so that no request waits on it for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import ReadOnlySqlTransaction, UndefinedTable
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as EnginePoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from service.errors import DatabaseUnavailable
from service.logs import scrub
from service.notices import Notices
from service.settings import DatabaseSettings
from service.sql import (
    SELECT_REVISION,
    Sql,
    SqlTransaction,
    psycopg_transaction,
    sqlalchemy_transaction,
)

T = TypeVar("T")

RECONNECT_SECONDS = 3.0
# libpq's: a connection whose peer stops answering (a host gone, a network cut) fails
# after about a minute, whether it is idle (keepalives) or waiting for its data to be
# acknowledged (tcp_user_timeout), instead of the kernel's two hours or fifteen minutes.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
_UNREACHABLE = (
    PoolTimeout,
    psycopg.OperationalError,
    ReadOnlySqlTransaction,
    OperationalError,
    InterfaceError,
    EnginePoolTimeout,
)


def error_line(error: BaseException) -> str:
    """A database's refusal in one line for an operator: the driver's own message,
    without the statement and parameters SQLAlchemy adds on the lines after it."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"database error: {scrub(lines[0]) if lines else type(error).__name__}"


def unreachable(error: BaseException) -> bool:
    """Whether `error` is a failure to reach or write the database (down, out of
    connections, timed out, read-only), as `Database` turns into `DatabaseUnavailable`,
    rather than a statement the database refused."""
    if isinstance(error, _UNREACHABLE):
        return True
    # A read-only standby, seen through SQLAlchemy.
    return isinstance(error, InternalError) and isinstance(error.orig, ReadOnlySqlTransaction)


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    """Failures to reach or write the database as the service's own error."""
    try:
        yield
    except Exception as error:
        if unreachable(error):
            raise DatabaseUnavailable(error) from error
        raise


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.async_url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(
        settings.async_url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        # A restarted PostgreSQL leaves dead connections in the pool; test before use.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": settings.connect_timeout_seconds,
            "application_name": "onramp",
            **KEEPALIVES,
        },
    )


# WAL lets readers work beside the one writer; the busy timeout queues writers.
_SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "busy_timeout": "15000",
    "foreign_keys": "ON",
    "synchronous": "NORMAL",
}


def _tune_sqlite(connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()
    for name, value in _SQLITE_PRAGMAS.items():
        # SQL text: a connection's settings, which SQLAlchemy has no expression for.
        cursor.execute(f"PRAGMA {name}={value}")
    cursor.close()


class Database:
    """One engine per process, shared by every request of that process.

    `statement_timeout_ms` bounds each statement on the pool's connections (the
    settings' DATABASE_STATEMENT_TIMEOUT_MS unless given; 0 for none, whatever the
    role's default): a report that reads a whole range runs without."""

    def __init__(
        self, settings: DatabaseSettings, *, statement_timeout_ms: int | None = None
    ) -> None:
        self.settings = settings
        # What this process's committed transactions tell its other parts (notices.py).
        self.notices = Notices()
        if statement_timeout_ms is None:
            statement_timeout_ms = settings.statement_timeout_ms
        # SQLite's connections; on PostgreSQL only migrations' and tests' (never the service's).
        self.engine = create_engine(settings)
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        if not settings.is_sqlite:
            self.pool = AsyncConnectionPool(
                settings.libpq_url,
                min_size=min(4, settings.pool_size),
                max_size=settings.pool_size,
                timeout=settings.pool_timeout_seconds,
                # psycopg_pool retries a lost connection with a doubling back-off for up to
                # this long; the default five minutes let a pool wait over a minute after
                # PostgreSQL came back. Giving up sooner lets the next request start a fresh
                # attempt, so writes resume within seconds of an outage (tests/reliability).
                reconnect_timeout=RECONNECT_SECONDS,
                kwargs={
                    "autocommit": True,
                    "connect_timeout": settings.connect_timeout_seconds,
                    "application_name": "onramp",
                    **KEEPALIVES,
                    # Timestamps then load in UTC, as the service hands them on: no row
                    # needs converting (a page of sessions has sixty).
                    "options": _with_url_options(
                        settings.libpq_url,
                        f"-c TimeZone=UTC -c statement_timeout={statement_timeout_ms}",
                    ),
                },
                open=False,
            )
        self._pool_opened = False

    async def open(self) -> None:
        """Start the hot-path pool's connections (on start-up, or on first use)."""
        if self.pool is not None and not self._pool_opened:
            self._pool_opened = True
            await self.pool.open(wait=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        """A transaction for the repositories' statements: committed on a clean exit,
        rolled back on an exception or a `sql.RollBack`."""
        if self.pool is None:
            async with (
                _reachable(),
                self.engine.connect() as connection,
                sqlalchemy_transaction(connection, self.notices) as transaction,
            ):
                yield transaction
            return
        async with (
            self.pool_connection() as pg_connection,
            psycopg_transaction(pg_connection, self.notices) as transaction,
        ):
            yield transaction

    async def run_alone(self, statement: Sql, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement run on its own (no BEGIN, no COMMIT: it is atomic by
        itself), one round trip: on psycopg's pool for PostgreSQL, on SQLAlchemy's engine
        for SQLite. Statements run here return rows (writes say RETURNING): asking
        psycopg whether there are any builds a description of every column, a fifth of a
        read's cost."""
        if self.pool is None:
            async with _reachable(), self.engine.connect() as connection:
                result = await connection.execute(
                    statement.expression, statement.sqlite_values(params)
                )
                rows = [tuple(row) for row in result.all()]
                await connection.commit()
                return rows
        async with self.pool_connection() as connection:
            cursor = await connection.execute(statement.psycopg_query, statement.values(params))
            return await cursor.fetchall()

    @asynccontextmanager
    async def pool_connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection of the psycopg pool (PostgreSQL only)."""
        assert self.pool is not None
        await self.open()
        # Inline rather than `_reachable()`: every statement passes here, and a second
        # context manager cost a few microseconds of each.
        try:
            async with self.pool.connection() as connection:
                yield connection
        except _UNREACHABLE as error:
            raise DatabaseUnavailable(error) from error

    async def check(self, within_seconds: float = 3.0) -> dict[str, Any]:
        """Whether the database answers, and at which schema revision it stands.

        On PostgreSQL over a connection of its own, not the pool's: a probe must not
        queue behind busy requests, and must see a database that is down at once.
        """
        try:
            revision = await answer_within(within_seconds, self._read_revision())
        except Exception as error:  # readiness reports any failure, it never raises
            if never_migrated(_cause_of(error)):
                return {"status": "ok", "revision": None}  # reachable, but never migrated
            return {"status": "unavailable", "detail": failure_detail(error)}
        return {"status": "ok", "revision": revision}

    async def _read_revision(self) -> str | None:
        if self.pool is None:
            async with self.transaction() as sql:
                revision: str | None = await sql.scalar(SELECT_REVISION, {})
                return revision
        async with await AsyncConnection.connect(
            self.settings.libpq_url,
            autocommit=True,
            connect_timeout=self.settings.connect_timeout_seconds,
            application_name="onramp-ready",
            **KEEPALIVES,
        ) as connection:
            row = await (await connection.execute(SELECT_REVISION.psycopg_query)).fetchone()
            return None if row is None else str(row[0])

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.pool is not None and self._pool_opened:
            await self.pool.close()


async def answer_within(seconds: float, work: Awaitable[T]) -> T:
    """`work`'s result, or TimeoutError once `seconds` have passed.

    Not `asyncio.timeout`: psycopg answers the cancellation of a running query by asking
    the server to cancel it and waiting up to ten seconds for that, which a stalled
    server never acknowledges, and `asyncio.timeout` waits for it. Here the cancelled
    work ends in the background (its connection goes back to the pool, or is closed),
    and the caller has its answer on time."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(seconds, 0.0))
    except asyncio.CancelledError:
        _leave_running(task)
        raise
    if task in done:
        return task.result()
    _leave_running(task)
    raise TimeoutError(f"no answer within {seconds * 1000:.0f} ms")


# Cancelled work still ending (answer_within); held here so that it is not collected
# before it has given its connection back.
_ENDING: set[asyncio.Future[Any]] = set()


def _leave_running(task: asyncio.Future[Any]) -> None:
    task.cancel()
    _ENDING.add(task)
    task.add_done_callback(_ended)


def _ended(task: asyncio.Future[Any]) -> None:
    _ENDING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: its failure was already answered as a time-out


def _with_url_options(url: str, options: str) -> str:
    """`options` after the URL's own (`?options=-c …`), which the pool's keyword would
    otherwise replace: a URL may say `default_transaction_read_only=on`, say."""
    try:
        given = conninfo_to_dict(url).get("options")
    except psycopg.ProgrammingError:  # the pool's first connection says what is wrong
        given = None
    return f"{given} {options}" if given else options


def failure_detail(error: BaseException) -> str:
    """One short line on why the database did not answer, for operators: the driver's
    own error behind a `DatabaseUnavailable`, no secret in it."""
    error = _cause_of(error)
    if isinstance(error, TimeoutError):
        return "timed out"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return scrub(f"{type(error).__name__}: {first_line}"[:200])  # type: ignore[no-any-return]


def _cause_of(error: BaseException) -> BaseException:
    if isinstance(error, DatabaseUnavailable) and error.__cause__ is not None:
        return error.__cause__
    return error


def never_migrated(error: BaseException) -> bool:
    """The revision table is missing: PostgreSQL says so by its error class, SQLite only
    in the driver's message."""
    if isinstance(error, UndefinedTable):
        return True
    driver_error = getattr(error, "orig", None)
    return str(driver_error).startswith("no such table: alembic_version")
