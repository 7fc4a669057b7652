"""The migrations build exactly the schema the models describe, and take it down again."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from service import migrations
from service.columns import utcnow
from service.database import Database
from service.merchant_webhooks import payloads
from service.onramp.models import SessionRow
from service.settings import DatabaseSettings
from service.tables import metadata
from service.webhooks.events import parse_event
from service.webhooks.repository import move_and_record
from tests.conftest import POSTGRES_ADMIN_URL
from tests.support.processes import run_onramp
from tests.support.webhooks import encode, onramp_event
from tests.webhooks.test_receive import a_session


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseSettings]:
    if request.param == "sqlite":
        yield DatabaseSettings(DATABASE_URL=f"sqlite:///{tmp_path}/scratch.db")
        return
    name = f"onramp_scratch_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield DatabaseSettings(DATABASE_URL=f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables_in(settings: DatabaseSettings) -> set[str]:
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_to_head_and_downgrade_to_base(empty_database: DatabaseSettings) -> None:
    migrations.upgrade(empty_database)
    assert migrations.current_revision(empty_database) == migrations.head_revision()
    assert {"onramp_sessions", "webhook_events", "operator_actions"} <= tables_in(empty_database)

    migrations.downgrade(empty_database, "base")
    assert migrations.current_revision(empty_database) is None
    assert tables_in(empty_database) <= {"alembic_version"}

    migrations.upgrade(empty_database)
    assert migrations.current_revision(empty_database) == migrations.head_revision()


def test_the_head_and_the_database_revision_are_alembic_own(
    empty_database: DatabaseSettings,
) -> None:
    """Serving reads both without alembic (service/migrations.py); alembic decides."""
    assert (
        migrations.head_revision()
        == ScriptDirectory(str(migrations.script_location())).get_current_head()
    )
    migrations.upgrade(empty_database, "0010")
    engine = create_engine(empty_database.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            by_alembic = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    assert migrations.current_revision(empty_database) == by_alembic == "0010"


def test_the_migrated_schema_matches_the_models(empty_database: DatabaseSettings) -> None:
    migrations.upgrade(empty_database)
    engine = create_engine(empty_database.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_onramp_migrate_upgrades_and_downgrades_postgres_from_any_directory(
    empty_database: DatabaseSettings, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": empty_database.url}
    upgraded = run_onramp("migrate", cwd=tmp_path, **env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database schema at {migrations.head_revision()}" in upgraded.stdout
    downgraded = run_onramp("migrate", "--downgrade", "base", cwd=tmp_path, **env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert "database schema at base" in downgraded.stdout
    assert tables_in(empty_database) <= {"alembic_version"}


def test_the_ledger_migration_lowers_hashes_and_rechecks_confirmed_deliveries(
    empty_database: DatabaseSettings,
) -> None:
    migrations.upgrade(empty_database, "0006")
    engine = create_engine(empty_database.sync_url, poolclass=NullPool)
    mixed = "0x" + "AbCd" * 16
    try:
        with engine.begin() as connection:
            for session_id, status in (("ors_confirmed", "confirmed"), ("ors_failed", "failed")):
                connection.execute(
                    text(
                        "INSERT INTO onramp_sessions (id, wallet_address, livemode, status,"
                        " source_amount, source_currency, destination_currency,"
                        " destination_network, transaction_hash, delivery_status,"
                        " delivery_confirmations, created_at, updated_at) VALUES (:id,"
                        " '0x52908400098527886E0F7030069857D2E4169EE7', false,"
                        " 'fulfillment_complete', '10.00', 'usd', 'musd', 'mezo', :tx, :status,"
                        " 1, :now, :now)"
                    ),
                    {"id": session_id, "tx": mixed, "status": status, "now": utcnow()},
                )
                connection.execute(
                    text(
                        "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts,"
                        " finished_at, created_at) VALUES (:id, :now, 3, :now, :now)"
                    ),
                    {"id": session_id, "now": utcnow()},
                )
        migrations.upgrade(empty_database)
        with engine.connect() as connection:
            hashes = connection.execute(text("SELECT transaction_hash FROM onramp_sessions"))
            assert {row[0] for row in hashes} == {mixed.lower()}
            open_checks = connection.execute(
                text("SELECT onramp_session_id FROM delivery_checks WHERE finished_at IS NULL")
            )
            assert [row[0] for row in open_checks] == ["ors_confirmed"]
        assert "delivery_credits" in tables_in(empty_database)
    finally:
        engine.dispose()


def test_nonces_issued_before_the_chain_check_count_start_at_none(
    empty_database: DatabaseSettings,
) -> None:
    """The count of a nonce's checks on chain arrives at 0 for nonces already out, and
    leaves again on downgrade with the nonces kept."""
    migrations.upgrade(empty_database, "0014")
    engine = create_engine(empty_database.sync_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at)"
                    " VALUES ('before0015', '0x52908400098527886E0F7030069857D2E4169EE7',"
                    " :now, :now)"
                ),
                {"now": utcnow()},
            )
        migrations.upgrade(empty_database)
        with engine.connect() as connection:
            counted = connection.execute(text("SELECT nonce, chain_checks FROM auth_nonces"))
            assert [tuple(row) for row in counted] == [("before0015", 0)]
        migrations.downgrade(empty_database, "0014")
        columns = {column["name"] for column in inspect(engine).get_columns("auth_nonces")}
        assert "chain_checks" not in columns
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT nonce FROM auth_nonces"))
            assert [row[0] for row in kept] == ["before0015"]
    finally:
        engine.dispose()


def _script(folder: Path, revision: str, down_revision: str) -> None:
    (folder / f"{revision}_step.py").write_text(
        "from collections.abc import Sequence\n\n"
        f'revision: str = "{revision}"\n'
        f"down_revision: str | Sequence[str] | None = {down_revision}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )


def test_a_merge_of_two_branches_is_the_one_head_as_alembic_reads_it(tmp_path: Path) -> None:
    """Alembic writes a merge's parents as a tuple; two branches not yet merged are two
    heads, which neither alembic nor serving takes for one."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / ".#0004_lock.py").symlink_to(tmp_path / "an editor's lock, not a script")
    _script(versions, "0001", "None")
    _script(versions, "0002", '"0001"')
    _script(versions, "0003", '("0001",)')

    def alembic_head() -> str | None:
        return ScriptDirectory(str(tmp_path), version_locations=[str(versions)]).get_current_head()

    with pytest.raises(CommandError):
        alembic_head()
    with pytest.raises(migrations.RevisionsUnclear, match="2 heads"):
        migrations.head_revision(versions)

    _script(versions, "0004", '("0002", "0003")')
    assert migrations.head_revision(versions) == alembic_head() == "0004"


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_a_merchant_event_written_in_one_statement_gets_its_body_on_downgrade(
    empty_database: DatabaseSettings,
) -> None:
    """The release before 0020 reads only `body`: an event still unrendered is rendered as
    this release's dispatcher would send it, and kept."""

    async def move() -> SessionRow | None:
        database = Database(empty_database)
        try:
            session = await a_session(database)
            payload = encode(onramp_event(session.stripe_session_id or "", "requires_payment"))
            return await move_and_record(database, parse_event(payload), payload, utcnow())
        finally:
            await database.dispose()

    migrations.upgrade(empty_database)
    engine = create_engine(empty_database.sync_url, poolclass=NullPool)
    try:
        moved = asyncio.run(move())
        assert moved is not None
        with engine.connect() as connection:
            [(body, kind, created_at)] = connection.execute(
                text("SELECT body, type, created_at FROM merchant_webhook_events")
            ).all()
        assert body is None
        migrations.downgrade(empty_database, "0019")
        with engine.connect() as connection:
            [(kept,)] = connection.execute(text("SELECT body FROM merchant_webhook_events")).all()
        assert kept == payloads.render(kind, created_at, moved)
    finally:
        engine.dispose()
