"""What every `onramp` command shares: settings, logging and a database, one-line
failures, exit codes.

Only click is imported here at start-up: `onramp --help` and every command's help load
this module, so the database drivers, the app and structlog are imported by the commands
that use them, when they run.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from service.database import Database
    from service.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_CONFIGURATION = 2
EXIT_FAILURE = 1
# A report that could not be made (Stripe or the database unavailable), told apart from
# a report that found something (exit 1).
EXIT_UNAVAILABLE = 3


def __getattr__(name: str) -> Any:
    """`log`, made on first use so that merely importing this module costs no structlog."""
    if name == "log":
        import structlog

        logger: FilteringBoundLogger = structlog.get_logger("onramp.cli")
        globals()["log"] = logger
        return logger
    raise AttributeError(name)


class UtcTime(click.ParamType[datetime]):
    """A moment written as the service prints them, or as a person would: ISO 8601
    with `Z` or an offset (`2026-12-06T22:40:46Z`, `2026-12-06T22:40:46+02:00`), or a
    plain date (its midnight); a time without a zone is UTC. Every time option of the
    CLI takes one (`--since`, `--until`), and the command gets an aware UTC datetime."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).strip().upper())
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO 8601 time: 2026-12-06T22:40:46Z,"
                    " 2026-12-06T22:40:46+02:00, 2026-12-06T22:40:46 (UTC) or 2026-12-06",
                    param,
                    ctx,
                )
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


TIME = UtcTime()


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    from service.logs import scrub

    click.echo(f"onramp: {scrub(message)}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    from service.settings import ConfigurationError, Settings

    try:
        settings = Settings.from_env()
    except ConfigurationError as error:
        for problem in error.problems:
            click.echo(f"onramp: configuration error: {problem}", err=True)
        sys.exit(EXIT_CONFIGURATION)
    _track_errors(settings)
    return settings


def _track_errors(settings: Settings) -> None:
    """Every command reads its settings here, so each reports its unhandled errors (the
    worker's included) to Sentry when SENTRY_DSN is set, tagged with its name."""
    if settings.error_tracking.sentry_dsn is None:
        return
    from service import error_tracking

    context = click.get_current_context(silent=True)
    error_tracking.start(settings, context.command_path if context else "onramp")


def reports_database_errors(command: F) -> F:
    """A database that cannot be reached, or a revision that does not exist, is a
    one-line operational error, not a crash. A statement the database refused (a schema
    other than the one this release expects, a constraint broken) is one line too, and
    an error reported to Sentry as well (SENTRY_DSN), as a route's would be."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            failure = _operational_failure(error)
            if failure is None:
                raise
            message, unexpected = failure
            if unexpected:
                from service import error_tracking

                error_tracking.report(error)
            fail(message)

    return wrapper  # type: ignore[return-value]


def _operational_failure(error: Exception) -> tuple[str, bool] | None:
    """The one line an operator reads for a database or migration failure, and whether
    it is unexpected (the database refused a statement, rather than being out of
    reach); None for anything else (a bug keeps its traceback)."""
    import psycopg
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from service.database import error_line, unreachable
    from service.errors import DatabaseUnavailable
    from service.migrations import RevisionsUnclear

    if isinstance(error, DatabaseUnavailable):
        detail = str(error.__cause__ or error).strip().splitlines()
        return f"database error: {detail[0] if detail else error.cause}", False
    if isinstance(error, SQLAlchemyError | psycopg.Error):  # a schema not migrated, say
        return error_line(error), not unreachable(error)
    if isinstance(error, CommandError | RevisionsUnclear):
        return f"migration error: {error}", False
    return None


def with_database(
    work: Callable[[Settings, Database], Awaitable[T]],
    log_level: str | None = "warning",
    *,
    reads_only: bool = False,
    long_statements: bool = False,
) -> T:
    """Run `work` to completion with the environment's settings, logging set up (at
    the settings' own level when `log_level` is None), and a database that is disposed
    of afterwards, whatever happens. Work that `reads_only` (listings, reports) reads
    the replica of DATABASE_READ_URL when there is one and it can answer
    (service/replica.py), so that it does not load the primary. Work with
    `long_statements` (a report over a whole range) runs without
    DATABASE_STATEMENT_TIMEOUT_MS, and waits for the replica as long as it needs."""
    import asyncio

    from service.database import Database
    from service.logs import configure_logging
    from service.replica import ReplicaReads

    settings = load_settings()
    configure_logging(log_level or settings.server.log_level, settings.server.log_format)

    async def run() -> T:
        primary = Database(settings.database, statement_timeout_ms=0 if long_statements else None)
        replica = (
            ReplicaReads.of(settings.database, primary, bounded=not long_statements)
            if reads_only
            else None
        )
        try:
            return await work(settings, replica or primary)
        finally:
            if replica is not None:
                await replica.dispose()
            await primary.dispose()

    return asyncio.run(run())
