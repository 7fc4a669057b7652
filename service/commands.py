"""What every `onramp` command shares: settings, logging and a database, one-line
failures, exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
import psycopg
import structlog
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from service.database import Database
from service.errors import DatabaseUnavailable
from service.logs import configure_logging, scrub
from service.settings import ConfigurationError, Settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
log = structlog.get_logger("onramp.cli")

EXIT_CONFIGURATION = 2
EXIT_FAILURE = 1
# A report that could not be made (Stripe or the database unavailable), told apart from
# a report that found something (exit 1).
EXIT_UNAVAILABLE = 3


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"onramp: {scrub(message)}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as error:
        for problem in error.problems:
            click.echo(f"onramp: configuration error: {problem}", err=True)
        sys.exit(EXIT_CONFIGURATION)


def reports_database_errors(command: F) -> F:
    """A database that cannot be reached, or a revision that does not exist, is a
    one-line operational error, not a crash."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DatabaseUnavailable as error:
            detail = str(error.__cause__ or error).strip().splitlines()
            fail(f"database error: {detail[0] if detail else error.cause}")
        except (SQLAlchemyError, psycopg.Error) as error:  # a schema not migrated, say
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()
            fail(f"database error: {detail[0] if detail else type(error).__name__}")
        except CommandError as error:
            fail(f"migration error: {error}")

    return wrapper  # type: ignore[return-value]


def with_database(
    work: Callable[[Settings, Database], Awaitable[T]],
    log_level: str | None = "warning",
    *,
    reads_only: bool = False,
) -> T:
    """Run `work` to completion with the environment's settings, logging set up (at
    the settings' own level when `log_level` is None), and a database that is disposed
    of afterwards, whatever happens. Work that `reads_only` (listings, reports) gets
    the read replica when DATABASE_READ_URL names one, so it does not load the primary."""
    settings = load_settings()
    configure_logging(log_level or settings.server.log_level, settings.server.log_format)

    async def run() -> T:
        replica = settings.database.replica if reads_only else None
        database = Database(replica or settings.database)
        try:
            return await work(settings, database)
        finally:
            await database.dispose()

    return asyncio.run(run())
