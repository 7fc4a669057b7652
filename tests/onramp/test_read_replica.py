"""`DATABASE_READ_URL`: listings (the wallet's, the operators', `onramp sessions list`)
read the replica while it stands at the primary's schema revision and answers in time;
creation and reads of one session by id stay on the primary. Every pooled connection
bounds its statements and keeps alive."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text

from service import migrations
from service.app import create_app
from service.commands import with_database
from service.database import KEEPALIVES, Database, answer_within
from service.errors import DatabaseUnavailable
from service.onramp.models import OnrampSession
from service.onramp.provider import OnrampServices
from service.replica import ReplicaReads
from service.settings import DatabaseSettings, Settings
from service.sql import Sql
from tests.conftest import POSTGRES_ADMIN_URL, empty_tables
from tests.live.streams import replicas_in_threads
from tests.onramp.conftest import ADMIN_KEY, Caller, new_wallet, token_for
from tests.support.metrics import samples, value
from tests.support.orm import orm_session
from tests.support.processes import run_onramp
from tests.support.tcp_proxy import proxy_before

OPS = {"X-API-Key": ADMIN_KEY}
READ_ONLY = "options=-c%20default_transaction_read_only%3Don"


@contextmanager
def second_database(revision: str = "head") -> Iterator[str]:
    """A second database at `revision`, standing in for a replica that holds other rows."""
    name = f"onramp_replica_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    migrations.upgrade(DatabaseSettings(DATABASE_URL=url), revision)
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def replica_url() -> Iterator[str]:
    with second_database() as url:
        yield url


@pytest.fixture
async def primary_url(migrated: dict[str, str]) -> AsyncIterator[str]:
    url = migrated["postgresql"]
    await empty_tables(url)
    yield url
    await empty_tables(url)


@pytest.fixture
def replica_app(
    make_settings: Callable[..., Settings], stripe_env: dict[str, str], primary_url: str
) -> Callable[..., Litestar]:
    def build(read_url: str, **more: str) -> Litestar:
        env = {**stripe_env, "DATABASE_URL": primary_url, "DATABASE_READ_URL": read_url}
        return create_app(make_settings(**env, **more))

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
    replica_app: Callable[..., Litestar], primary_url: str
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
    replica_app: Callable[..., Litestar], replica_url: str, tmp_path: Path, primary_url: str
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

    assert listed_by_the_cli(tmp_path, primary_url, replica_url) == [only_on_replica]
    await empty_tables(replica_url)


def listed_by_the_cli(cwd: Path, primary_url: str, replica_url: str) -> list[str]:
    """The session ids `onramp sessions list` prints with a replica configured."""
    listed = run_onramp(
        "sessions",
        "list",
        "--json",
        cwd=cwd,
        DATABASE_URL=primary_url,
        DATABASE_READ_URL=replica_url,
    )
    assert listed.returncode == 0, listed.stderr
    return [row["id"] for row in json.loads(listed.stdout)]


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


LISTINGS = "/api/v1/onramp/sessions"
ALL_SESSIONS = "/api/v1/admin/sessions"


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def replica_check(client: httpx.AsyncClient) -> dict[str, Any]:
    """The replica in the operators' readiness detail; the service stays ready."""
    detail = await client.get("/api/v1/admin/ready", headers=OPS)
    assert (detail.status_code, detail.json()["status"]) == (200, "ready"), detail.text
    assert (await client.get("/ready")).json() == {"status": "ready"}
    check: dict[str, Any] = detail.json()["checks"]["replica"]
    return check


async def fallbacks(client: httpx.AsyncClient, reason: str) -> float:
    scraped = samples((await client.get("/metrics")).text)
    return value(scraped, "onramp_database_replica_fallbacks_total", reason=reason)


async def test_a_replica_a_migration_behind_is_read_only_once_it_has_caught_up(
    replica_app: Callable[..., Litestar], primary_url: str, tmp_path: Path
) -> None:
    wallet = new_wallet()
    on_primary = await stored_on(primary_url, wallet)
    head = migrations.head_revision()
    with second_database("0011") as replica:
        async with AsyncTestClient(app=replica_app(replica)) as client:
            counted = await fallbacks(client, "behind")
            caller = Caller(client, wallet)
            assert ids(await caller.get(LISTINGS)) == [on_primary]
            assert ids(await client.get(ALL_SESSIONS, headers=OPS)) == [on_primary]
            assert await replica_check(client) == {
                "status": "behind",
                "reads": "primary",
                "revision": "0011",
                "primaryRevision": head,
                "standby": False,
                "lagSeconds": None,
            }
            assert await fallbacks(client, "behind") == counted + 2
            assert listed_by_the_cli(tmp_path, primary_url, replica) == [on_primary]

            await asyncio.to_thread(migrations.upgrade, DatabaseSettings(DATABASE_URL=replica))
            on_replica = await stored_on(replica, wallet)
            caught_up = await replica_check(client)
            assert (caught_up["status"], caught_up["revision"]) == ("ok", head)
            assert ids(await caller.get(LISTINGS)) == [on_replica]

            # Behind again between two checks: the read that finds a column missing is
            # answered by the primary, and the replica is passed over from then on.
            await asyncio.to_thread(
                migrations.downgrade, DatabaseSettings(DATABASE_URL=replica), "0011"
            )
            counted = await fallbacks(client, "behind")
            assert ids(await caller.get(LISTINGS)) == [on_primary]
            assert ids(await client.get(ALL_SESSIONS, headers=OPS)) == [on_primary]
            assert await fallbacks(client, "behind") == counted + 2
            assert (await replica_check(client))["status"] == "behind"


async def test_a_stalled_replica_holds_no_listing_past_the_read_timeout(
    make_settings: Callable[..., Settings],
    stripe_env: dict[str, str],
    replica_url: str,
    primary_url: str,
) -> None:
    await empty_tables(replica_url)
    wallet = new_wallet()
    on_primary = await stored_on(primary_url, wallet)
    on_replica = await stored_on(replica_url, wallet)
    owner = {"Authorization": f"Bearer {token_for(wallet)}"}
    read_timeout = 1.0
    with proxy_before(replica_url) as proxy:
        settings = make_settings(
            **stripe_env,
            DATABASE_URL=primary_url,
            DATABASE_READ_URL=proxy.url,
            DATABASE_READ_TIMEOUT_MS=str(round(read_timeout * 1000)),
        )
        # A server of its own: the test client would hold each request in turn.
        with replicas_in_threads(settings, count=1) as (url,):
            async with httpx.AsyncClient(base_url=url, timeout=read_timeout * 5) as client:
                assert (await replica_check(client))["status"] == "ok"
                assert ids(await client.get(LISTINGS, headers=owner)) == [on_replica]
                counted = await fallbacks(client, "unavailable")

                async def timed(path: str, headers: dict[str, str]) -> tuple[float, httpx.Response]:
                    started = time.monotonic()
                    response = await client.get(path, headers=headers)
                    return time.monotonic() - started, response

                proxy.freeze()
                try:
                    answers = await asyncio.gather(
                        *(timed(LISTINGS, owner) for _ in range(4)),
                        *(timed(ALL_SESSIONS, OPS) for _ in range(2)),
                    )
                    for elapsed, response in answers:
                        assert elapsed < read_timeout + 1.0
                        if response.status_code != 200:
                            assert (response.status_code, response.json()["code"]) == (
                                503,
                                "database_unavailable",
                            )
                        else:
                            assert ids(response) == [on_primary]
                    # Known stalled: the next listing goes to the primary without waiting.
                    elapsed, response = await timed(LISTINGS, owner)
                    assert ids(response) == [on_primary]
                    assert elapsed < read_timeout / 2
                    stalled = await replica_check(client)
                    assert (stalled["status"], stalled["reads"], stalled["detail"]) == (
                        "unavailable",
                        "primary",
                        "timed out",
                    )
                    assert await fallbacks(client, "unavailable") == counted + 7
                finally:
                    proxy.thaw()
                assert (await replica_check(client))["status"] == "ok"
                assert ids(await client.get(LISTINGS, headers=owner)) == [on_replica]


async def test_every_pooled_connection_bounds_its_statements_and_keeps_alive(
    primary_url: str, replica_url: str
) -> None:
    settings = DatabaseSettings(
        DATABASE_URL=primary_url,
        DATABASE_READ_URL=replica_url,
        DATABASE_STATEMENT_TIMEOUT_MS="250",
        DATABASE_READ_TIMEOUT_MS="600",
    )
    primary = Database(settings)
    reads = ReplicaReads.of(settings, primary)
    assert reads is not None
    try:
        # The replica's statements get its share of the read timeout.
        for database, timeout in ((primary, "250ms"), (reads.replica, "300ms")):
            async with database.pool_connection() as connection:
                shown = await (await connection.execute("SHOW statement_timeout")).fetchone()
                assert shown == (timeout,)
                given = connection.info.get_parameters()
            assert {name: given.get(name) for name in KEEPALIVES} == {
                name: str(value) for name, value in KEEPALIVES.items()
            }
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            await primary.run_alone(Sql(select(func.pg_sleep(5))), {})
        assert time.monotonic() - started < 2
    finally:
        await reads.dispose()
        await primary.dispose()


def test_a_report_over_a_whole_range_runs_without_a_statement_timeout(
    primary_url: str, replica_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`onramp reconcile` reads every session of its range in one statement."""
    monkeypatch.setenv("DATABASE_URL", primary_url)
    monkeypatch.setenv("DATABASE_READ_URL", replica_url)

    async def timeouts(_: Settings, database: Database) -> list[str]:
        assert isinstance(database, ReplicaReads)
        shown = []
        for pooled in (database.primary, database.replica):
            async with pooled.pool_connection() as connection:
                row = await (await connection.execute("SHOW statement_timeout")).fetchone()
                assert row is not None
                shown.append(str(row[0]))
        return shown

    assert with_database(timeouts, reads_only=True, long_statements=True) == ["0", "0"]
    assert with_database(timeouts, reads_only=True) == ["30s", "1s"]


async def test_an_answer_on_time_is_not_held_by_work_slow_to_cancel() -> None:
    """As psycopg is with a query on a stalled server: asked to stop, it waits for the
    server to acknowledge; the caller still has its answer on time."""
    stopped = asyncio.Event()

    async def slow_to_cancel() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.3)
            stopped.set()

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await answer_within(0.05, slow_to_cancel())
    assert time.monotonic() - started < 0.2
    await asyncio.wait_for(stopped.wait(), 2)
