"""Migration 0013 builds its indexes CONCURRENTLY on PostgreSQL, and running it again
after a build that failed half-way finishes the job."""

from __future__ import annotations

import psycopg
import pytest

from service import migrations
from service.settings import DatabaseSettings
from tests.test_migrations import empty_database  # noqa: F401 - the fixture


# PostgreSQL only: SQLite builds an index in one transaction, so nothing is left half-built.
@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_a_rerun_replaces_an_index_a_failed_concurrent_build_left_invalid(
    empty_database: DatabaseSettings,  # noqa: F811
) -> None:
    migrations.upgrade(empty_database, "0012")
    with psycopg.connect(empty_database.libpq_url, autocommit=True) as connection:
        for session_id in ("ors_a", "ors_b"):
            connection.execute(
                "INSERT INTO onramp_sessions (id, wallet_address, livemode, status,"
                " source_currency, destination_currency, destination_network,"
                " delivery_status, delivery_confirmations, created_at, updated_at)"
                " VALUES (%s, '0xabc', false, 'initialized', 'usd', 'musd', 'mezo',"
                " 'not_started', 0, '2026-01-01', '2026-01-01')",
                (session_id,),
            )
        # A concurrent build that fails (here: a duplicate under UNIQUE) leaves its
        # index behind, marked invalid, as a build killed by a deploy would.
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY ix_onramp_sessions_created_at"
                " ON onramp_sessions (created_at)"
            )

    migrations.upgrade(empty_database)

    with psycopg.connect(empty_database.libpq_url) as connection:
        row = connection.execute(
            "SELECT i.indisvalid, i.indisunique FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = 'ix_onramp_sessions_created_at'"
        ).fetchone()
    assert row == (True, False)
    assert migrations.current_revision(empty_database) == migrations.head_revision()
