"""Alembic environment: migrates the database named by the service's own settings.

Each migration runs in its own transaction, and on PostgreSQL waits for a lock at most
MIGRATION_LOCK_TIMEOUT_SECONDS (service/schema_changes.py), so that a migration on a
database in service fails fast, rolled back, rather than queue the requests behind it.
"""

from __future__ import annotations

from alembic import context
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from service.schema_changes import limit_lock_waits, lock_wait_failure
from service.settings import DatabaseSettings, Settings
from service.tables import metadata

config = context.config
# `onramp migrate` passes its settings; the `alembic` command reads the environment.
database: DatabaseSettings = config.attributes.get("database") or Settings.from_env().database
url = config.get_main_option("sqlalchemy.url") or database.sync_url
lock_timeout = database.migration_lock_timeout_seconds


def run_offline() -> None:
    context.configure(
        url=url, target_metadata=metadata, literal_binds=True, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            limit_lock_waits(connection, lock_timeout)
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            transaction_per_migration=True,
        )
        try:
            with context.begin_transaction():
                context.run_migrations()
        except OperationalError as error:
            blocked = lock_wait_failure(error, lock_timeout)
            if blocked is None:
                raise
            raise CommandError(blocked) from error
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
