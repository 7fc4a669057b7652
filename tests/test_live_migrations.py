"""Migrations on a database in service (PostgreSQL): requests keep being answered while
a realistic migration runs, and a migration that cannot get its lock gives up within
MIGRATION_LOCK_TIMEOUT_SECONDS, rolled back, to be run again."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from service import migrations
from service.schema_changes import create_index_concurrently
from service.settings import DatabaseSettings
from tests.conftest import POSTGRES_ADMIN_URL
from tests.onramp.conftest import new_wallet, token_for
from tests.support.processes import run_onramp, service_env, serving
from tests.support.webhooks import encode, onramp_event, sign

SESSIONS = 100_000
WALLETS = 100

# The next migration as it would be written: a column with a constant default (no table
# rewrite) and three indexes built concurrently on tables in use. bench/live_migration.py
# also runs it with plain indexes, built inside the migration's transaction.
NEXT_MIGRATION = """
import sqlalchemy as sa
from alembic import op

from service.schema_changes import create_index_concurrently, drop_index_concurrently

build_index, drop_index = {build_index}, {drop_index}

revision = "live_test"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "onramp_sessions",
        sa.Column("review_state", sa.String(16), nullable=False, server_default="none"),
    )
    build_index("ix_live_sessions_created_at", "onramp_sessions", ["created_at"])
    build_index("ix_live_sessions_status_updated", "onramp_sessions", ["status", "updated_at"])
    build_index("ix_live_events_received_at", "webhook_events", ["received_at"])


def downgrade() -> None:
    drop_index("ix_live_events_received_at", "webhook_events")
    drop_index("ix_live_sessions_status_updated", "onramp_sessions")
    drop_index("ix_live_sessions_created_at", "onramp_sessions")
    op.drop_column("onramp_sessions", "review_state")
"""


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    name = f"onramp_live_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_next_migration(
    settings: DatabaseSettings, folder: Path, *, concurrently: bool = True
) -> Config:
    """The service's Alembic configuration, with a test-only folder of versions beside
    the real ones."""
    builds = (
        ("create_index_concurrently", "drop_index_concurrently")
        if concurrently
        else ("op.create_index", "op.drop_index")
    )
    (folder / "live_test_next.py").write_text(
        NEXT_MIGRATION.format(
            head=migrations.head_revision(), build_index=builds[0], drop_index=builds[1]
        )
    )
    config = migrations.alembic_config(settings)
    config.set_main_option("path_separator", "os")
    versions = [str(migrations.script_location() / "versions"), str(folder)]
    config.set_main_option("version_locations", os.pathsep.join(versions))
    return config


def populate(url: str, wallets: list[str], sessions: int = SESSIONS) -> list[str]:
    """Sessions over the wallets and as many stored events, by SQL; the ids of the first
    wallet's sessions."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO onramp_sessions (id, stripe_session_id, wallet_address, livemode, status,"
            " source_amount, source_currency, destination_currency, destination_network,"
            " delivery_status, delivery_confirmations, created_at, updated_at)"
            " SELECT 'ors_' || lpad(n::text, 26, '0'), 'cos_live' || n,"
            " (%s::text[])[1 + n %% %s], false,"
            " 'fulfillment_complete', '100.00', 'usd', 'musd', 'mezo', 'confirmed', 3,"
            " now() - n * interval '1 minute', now() - n * interval '1 minute'"
            " FROM generate_series(1, %s) AS n",
            (wallets, len(wallets), sessions),
        )
        connection.execute(
            "INSERT INTO webhook_events (id, type, created, livemode, onramp_session_id,"
            " payload, received_at, processed_at, outcome, attempts)"
            " SELECT 'evt_live' || n, 'crypto.onramp_session_updated',"
            " now() - n * interval '1 minute', false, 'ors_' || lpad(n::text, 26, '0'),"
            " '{}', now() - n * interval '1 minute', now() - n * interval '1 minute',"
            " 'applied', 1 FROM generate_series(1, %s) AS n",
            (sessions,),
        )
        connection.execute("ANALYZE")
    return [f"ors_{n:026d}" for n in range(len(wallets), sessions, len(wallets))]


async def longest_waits(
    client: httpx.AsyncClient, wallet: str, session_ids: list[str], running: Callable[[], bool]
) -> tuple[float, float, int]:
    """Reads of single sessions (four at a time) and webhook events (one at a time) until
    `running()` turns false: the longest read and the longest webhook, and how many
    requests were answered."""
    headers = {"Authorization": f"Bearer {token_for(wallet)}"}
    longest = {"read": 0.0, "webhook": 0.0}
    answered = 0

    async def reader(offset: int) -> None:
        nonlocal answered
        index = offset
        while running():
            started = time.perf_counter()
            response = await client.get(
                f"/api/v1/onramp/sessions/{session_ids[index % len(session_ids)]}",
                headers=headers,
            )
            longest["read"] = max(longest["read"], time.perf_counter() - started)
            assert response.status_code == 200, response.text
            answered += 1
            index += 4

    async def webhooks() -> None:
        nonlocal answered
        while running():
            body = encode(onramp_event(f"cos_{secrets.token_hex(8)}", "requires_payment"))
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/webhooks/stripe",
                content=body,
                headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
            )
            longest["webhook"] = max(longest["webhook"], time.perf_counter() - started)
            assert response.status_code < 300, response.text
            answered += 1

    await asyncio.gather(*(reader(offset) for offset in range(4)), webhooks())
    return longest["read"], longest["webhook"], answered


async def measured(
    client: httpx.AsyncClient, config: Config, wallet: str, session_ids: list[str]
) -> tuple[float, tuple[float, float, int], tuple[float, float, int]]:
    """Requests for two quiet seconds, then during the migration: how long it took and the
    longest waits of each phase."""
    deadline = time.monotonic() + 2
    quiet = await longest_waits(client, wallet, session_ids, lambda: time.monotonic() < deadline)
    migrating = asyncio.create_task(asyncio.to_thread(command.upgrade, config, "heads"))
    started = time.monotonic()
    during = await longest_waits(client, wallet, session_ids, lambda: not migrating.done())
    await migrating
    return time.monotonic() - started, quiet, during


@pytest.mark.timeout(90)
async def test_the_next_migration_runs_while_requests_are_answered(
    scratch_postgres: str, tmp_path: Path, record_figures: Callable[..., None]
) -> None:
    settings = DatabaseSettings(DATABASE_URL=scratch_postgres)
    migrations.upgrade(settings)
    wallets = [new_wallet() for _ in range(WALLETS)]
    session_ids = populate(scratch_postgres, wallets)
    config = with_next_migration(settings, tmp_path)
    with serving(tmp_path, **service_env(scratch_postgres)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            took, quiet, during = await measured(client, config, wallets[0], session_ids)

    record_figures(
        sessions=SESSIONS,
        migration_seconds=round(took, 2),
        longest_read_quiet_ms=round(quiet[0] * 1000, 1),
        longest_webhook_quiet_ms=round(quiet[1] * 1000, 1),
        longest_read_migrating_ms=round(during[0] * 1000, 1),
        longest_webhook_migrating_ms=round(during[1] * 1000, 1),
        requests_while_migrating=during[2],
    )
    print(f"migration {took:.2f} s; quiet {quiet}; migrating {during}")
    assert during[2] > 0
    assert during[0] < 1.0, f"a session read waited {during[0]:.2f} s"
    assert during[1] < 1.0, f"a webhook waited {during[1]:.2f} s"
    with psycopg.connect(scratch_postgres) as connection:
        valid = connection.execute(
            "SELECT count(*) FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
            " WHERE relname LIKE 'ix_live_%%' AND indisvalid"
        ).fetchone()
        assert valid == (3,)
        defaults = connection.execute(
            "SELECT count(*) FROM onramp_sessions WHERE review_state = 'none'"
        ).fetchone()
        assert defaults is not None
        assert defaults[0] >= SESSIONS

    command.downgrade(config, migrations.head_revision() or "base")


def test_a_migration_that_cannot_get_its_lock_gives_up_and_runs_again(
    scratch_postgres: str, tmp_path: Path
) -> None:
    before, target = "0011", "0012"  # 0012 adds columns to onramp_sessions
    migrations.upgrade(DatabaseSettings(DATABASE_URL=scratch_postgres), before)
    impatient = DatabaseSettings(
        DATABASE_URL=scratch_postgres, MIGRATION_LOCK_TIMEOUT_SECONDS="0.5"
    )
    with psycopg.connect(scratch_postgres) as report:
        report.execute("SELECT count(*) FROM onramp_sessions")  # holds its lock until rollback

        started = time.monotonic()
        with pytest.raises(CommandError, match=r"no lock within 0.5 s .*onramp_sessions"):
            migrations.upgrade(impatient, target)
        assert time.monotonic() - started < 2.0
        assert migrations.current_revision(impatient) == before

        blocked = run_onramp(
            "migrate",
            "--revision",
            target,
            cwd=tmp_path,
            DATABASE_URL=scratch_postgres,
            MIGRATION_LOCK_TIMEOUT_SECONDS="1",
        )
        assert blocked.returncode == 1
        lines = blocked.stderr.strip().splitlines()
        assert len(lines) == 1, blocked.stderr
        assert lines[0].startswith("onramp: migration error: no lock within 1 s ")
        assert "ALTER TABLE onramp_sessions" in lines[0]
        assert "run `onramp migrate` again" in lines[0]
        report.rollback()

    again = run_onramp("migrate", "--revision", target, cwd=tmp_path, DATABASE_URL=scratch_postgres)
    assert again.returncode == 0, again.stderr
    assert f"database schema at {target}" in again.stdout


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_next_migration_goes_up_and_down_on_both_databases(
    dialect: str, scratch_postgres: str, tmp_path: Path
) -> None:
    url = scratch_postgres if dialect == "postgresql" else f"sqlite:///{tmp_path}/onramp.db"
    settings = DatabaseSettings(DATABASE_URL=url)
    migrations.upgrade(settings)
    config = with_next_migration(settings, tmp_path)
    command.upgrade(config, "heads")
    assert migrations.current_revision(settings) == "live_test"
    assert {"ix_live_sessions_created_at", "ix_live_events_received_at"} <= indexes_of(url)
    command.downgrade(config, migrations.head_revision() or "base")
    assert migrations.current_revision(settings) == migrations.head_revision()
    assert not any(name.startswith("ix_live_") for name in indexes_of(url))


def indexes_of(url: str) -> set[str]:
    engine = create_engine(DatabaseSettings(DATABASE_URL=url).sync_url, poolclass=NullPool)
    try:
        found = inspect(engine)
        return {
            str(index["name"])
            for table in ("onramp_sessions", "webhook_events")
            for index in found.get_indexes(table)
        }
    finally:
        engine.dispose()


def test_an_index_build_stopped_half_way_is_built_again(scratch_postgres: str) -> None:
    """A concurrent build that fails leaves an invalid index behind; running the
    migration again drops it and builds a valid one."""
    migrations.upgrade(DatabaseSettings(DATABASE_URL=scratch_postgres))
    populate(scratch_postgres, [new_wallet()], sessions=10)
    with psycopg.connect(scratch_postgres, autocommit=True) as connection:
        connection.execute("UPDATE onramp_sessions SET source_amount = '1.00'")
    engine = create_engine(
        DatabaseSettings(DATABASE_URL=scratch_postgres).sync_url, poolclass=NullPool
    )

    def build() -> None:
        with (
            engine.connect() as connection,
            Operations.context(MigrationContext.configure(connection)),
        ):
            create_index_concurrently(
                "ix_live_unique_amount", "onramp_sessions", ["source_amount"], unique=True
            )

    try:
        with pytest.raises(IntegrityError):
            build()
        assert index_valid(scratch_postgres, "ix_live_unique_amount") is False
        with psycopg.connect(scratch_postgres, autocommit=True) as connection:
            connection.execute("UPDATE onramp_sessions SET source_amount = id")
        build()
        assert index_valid(scratch_postgres, "ix_live_unique_amount") is True
        build()  # a valid index is kept
        assert index_valid(scratch_postgres, "ix_live_unique_amount") is True
    finally:
        engine.dispose()


def index_valid(url: str, name: str) -> bool | None:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
            " WHERE relname = %s",
            (name,),
        ).fetchone()
    return None if row is None else bool(row[0])
