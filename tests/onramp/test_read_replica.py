"""`DATABASE_READ_URL`: listings (the wallet's, the operators', `onramp sessions list`)
read the replica; creation and reads of one session by id stay on the primary."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from service import migrations
from service.app import create_app
from service.database import Database
from service.errors import DatabaseUnavailable
from service.onramp.models import OnrampSession
from service.onramp.provider import OnrampServices
from service.settings import DatabaseSettings, Settings
from service.sql import Sql
from tests.conftest import POSTGRES_ADMIN_URL, empty_tables
from tests.onramp.conftest import ADMIN_KEY, Caller, new_wallet
from tests.support.orm import orm_session
from tests.support.processes import run_onramp

OPS = {"X-API-Key": ADMIN_KEY}
READ_ONLY = "options=-c%20default_transaction_read_only%3Don"


@pytest.fixture(scope="module")
def replica_url() -> Iterator[str]:
    """A second migrated database standing in for a replica that holds other rows."""
    name = f"onramp_replica_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def primary_url(migrated: dict[str, str]) -> AsyncIterator[str]:
    url = migrated["postgresql"]
    await empty_tables(url)
    yield url
    await empty_tables(url)


@pytest.fixture
def replica_app(
    make_settings: Callable[..., Settings], stripe_env: dict[str, str], primary_url: str
) -> Callable[[str], Litestar]:
    def build(read_url: str) -> Litestar:
        env = {**stripe_env, "DATABASE_URL": primary_url, "DATABASE_READ_URL": read_url}
        return create_app(make_settings(**env))

    return build


async def stored_on(url: str, wallet: str) -> str:
    """A session written straight into the database at `url`."""
    database = Database(DatabaseSettings(DATABASE_URL=url))
    session = OnrampSession(
        wallet_address=wallet,
        stripe_session_id=f"cos_{secrets.token_hex(8)}",
        source_amount="42.00",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
    )
    try:
        async with orm_session(database) as db, db.begin():
            db.add(session)
    finally:
        await database.dispose()
    return session.id


async def test_listings_work_through_a_read_only_connection_while_writes_go_to_the_primary(
    replica_app: Callable[[str], Litestar], primary_url: str
) -> None:
    app = replica_app(f"{primary_url}?{READ_ONLY}")
    async with AsyncTestClient(app=app) as client:
        caller = Caller(client, new_wallet())
        created = await caller.create()
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        assert (await caller.get(f"/api/v1/onramp/sessions/{session_id}")).status_code == 200
        mine = await caller.get("/api/v1/onramp/sessions")
        assert mine.status_code == 200, mine.text
        assert [item["id"] for item in mine.json()["items"]] == [session_id]
        every = await client.get("/api/v1/admin/sessions", headers=OPS)
        assert [item["id"] for item in every.json()["items"]] == [session_id]

        reader = OnrampServices.of(app.state).read_database
        assert reader is not OnrampServices.of(app.state).database
        with pytest.raises(DatabaseUnavailable):
            await reader.run_alone(
                Sql(text("UPDATE onramp_sessions SET status = status RETURNING id")), {}
            )


async def test_lists_are_served_from_the_read_url_and_single_reads_from_the_primary(
    replica_app: Callable[[str], Litestar], replica_url: str, tmp_path: Path, primary_url: str
) -> None:
    await empty_tables(replica_url)
    wallet = new_wallet()
    only_on_replica = await stored_on(replica_url, wallet)
    async with AsyncTestClient(app=replica_app(replica_url)) as client:
        caller = Caller(client, wallet)
        created = (await caller.create()).json()

        mine = await caller.get("/api/v1/onramp/sessions")
        assert [item["id"] for item in mine.json()["items"]] == [only_on_replica]
        every = await client.get("/api/v1/admin/sessions", headers=OPS)
        assert [item["id"] for item in every.json()["items"]] == [only_on_replica]
        assert (await caller.get(f"/api/v1/onramp/sessions/{created['id']}")).status_code == 200
        replica_only = await caller.get(f"/api/v1/onramp/sessions/{only_on_replica}")
        assert replica_only.status_code == 404

    listed = run_onramp(
        "sessions",
        "list",
        "--json",
        cwd=tmp_path,
        DATABASE_URL=primary_url,
        DATABASE_READ_URL=replica_url,
    )
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [only_on_replica]
    await empty_tables(replica_url)


def test_a_replica_needs_postgresql_on_both_sides(tmp_path: Path, primary_url: str) -> None:
    for env in (
        {"DATABASE_READ_URL": primary_url},
        {"DATABASE_URL": primary_url, "DATABASE_READ_URL": f"sqlite:///{tmp_path}/r.db"},
    ):
        result = run_onramp("sessions", "list", cwd=tmp_path, **env)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "onramp: configuration error: DATABASE_READ_URL: a read replica needs PostgreSQL"
            " for both DATABASE_URL and DATABASE_READ_URL; leave it unset with SQLite"
        )
    wrong = run_onramp(
        "sessions", "list", cwd=tmp_path, DATABASE_READ_URL="mysql://reader:pw7@db/x"
    )
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("onramp: configuration error: DATABASE_READ_URL: must be")
    assert "pw7" not in wrong.stderr
