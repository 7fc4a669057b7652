"""Schema changes that a database in service survives, for Alembic's scripts and env.py.

On PostgreSQL a statement waiting for a table's lock queues every later request on that
table behind it, so a migration waits for a lock at most MIGRATION_LOCK_TIMEOUT_SECONDS,
then fails and is rolled back, to be run again. An index built on an existing table
without CONCURRENTLY blocks its writes for the whole build, so indexes are built by
`create_index_concurrently` (docs/operations.md, "Writing the next migration").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

# PostgreSQL's lock_not_available: a lock_timeout (or NOWAIT) ran out.
LOCK_NOT_AVAILABLE = "55P03"


def limit_lock_waits(connection: Connection, seconds: float) -> None:
    """Bound every lock wait of this migration run, on this connection and for all its
    transactions. The work itself (an index build, a backfill) keeps no time limit:
    `statement_timeout` is off, whatever the role's default."""
    connection.execute(
        sa.select(
            sa.func.set_config("lock_timeout", f"{max(1, round(seconds * 1000))}ms", False),
            sa.func.set_config("statement_timeout", "0", False),
        )
    )
    # Committed now, so that Alembic starts each migration's transaction itself.
    connection.commit()


def lock_wait_failure(error: BaseException, seconds: float) -> str | None:
    """The operator's line for a migration stopped by its lock timeout; None otherwise."""
    cause = getattr(error, "orig", None) or error.__cause__
    if getattr(cause, "sqlstate", None) != LOCK_NOT_AVAILABLE:
        return None
    statement = " ".join(str(getattr(error, "statement", "") or "").split())
    if len(statement) > 100:
        statement = statement[:99] + "…"
    return (
        f"no lock within {seconds:g} s (MIGRATION_LOCK_TIMEOUT_SECONDS) for `{statement}`:"
        " another transaction holds the table; that migration was rolled back, the ones"
        " before it stay applied; run `onramp migrate` again"
    )


def create_index_concurrently(
    name: str,
    table: str,
    columns: Sequence[str | sa.TextClause],
    *,
    unique: bool = False,
    where: str | None = None,
) -> None:
    """Build an index on a table in use without blocking its writes (PostgreSQL's
    CREATE INDEX CONCURRENTLY, outside the migration's transaction, in Alembic's
    autocommit block); a plain index on SQLite. Safe to run again: an invalid index
    left by a failed build is dropped first, and a valid one is kept."""
    condition = sa.text(where) if where else None
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, list(columns), unique=unique, sqlite_where=condition)
        return
    with op.get_context().autocommit_block():
        if _is_invalid_index(name):
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(
            name,
            table,
            list(columns),
            unique=unique,
            postgresql_where=condition,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def drop_index_concurrently(name: str, table: str) -> None:
    """Drop an index without blocking the table's reads and writes while it waits."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def _is_invalid_index(name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
            " WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
            " AND pg_class.relnamespace = current_schema()::regnamespace"
        ),
        {"name": name},
    )
    return found.first() is not None
