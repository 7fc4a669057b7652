"""The retention job on both databases: what is past its retention goes, in batches;
what is live stays; the worker runs it on its schedule, one process at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from service.chain.rpc import Chains
from service.columns import utcnow
from service.database import Database
from service.delivery.worker import DeliveryWorker
from service.onramp import idempotency_keys
from service.retention.job import run_retention
from service.retention.schedule import RETENTION_LOCK, RetentionSchedule
from service.settings import ChainSettings, DatabaseSettings, RetentionSettings
from tests.support.processes import run_onramp

DAY = timedelta(days=1)


def retention(**env: str) -> RetentionSettings:
    return RetentionSettings.model_validate({"RETENTION_BATCH_SIZE": "10", **env})


async def insert(database: Database, statement: str, rows: list[dict[str, object]]) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(text(statement), rows)


async def add_keys(database: Database, prefix: str, count: int, created_at: datetime) -> None:
    await insert(
        database,
        "INSERT INTO idempotency_keys (wallet_address, key, fingerprint, created_at)"
        " VALUES ('0xabc', :key, 'f', :at)",
        [{"key": f"{prefix}-{i}", "at": created_at} for i in range(count)],
    )


async def add_nonces(database: Database, prefix: str, count: int, expires_at: datetime) -> None:
    await insert(
        database,
        "INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at)"
        " VALUES (:nonce, '0xabc', :at, :at)",
        [{"nonce": f"{prefix}-{i}", "at": expires_at} for i in range(count)],
    )


async def add_tickets(database: Database, prefix: str, count: int, expires_at: datetime) -> None:
    await insert(
        database,
        "INSERT INTO stream_tickets (digest, wallet_address, session_id, issued_at, expires_at)"
        " VALUES (:digest, '0xabc', 'ors_x', :at, :at)",
        [{"digest": f"{prefix}-{i}", "at": expires_at} for i in range(count)],
    )


async def add_checks(
    database: Database, prefix: str, count: int, due_at: datetime, finished_at: datetime | None
) -> None:
    await insert(
        database,
        "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, finished_at,"
        " created_at) VALUES (:id, :due, 1, :finished, :due)",
        [{"id": f"{prefix}-{i}", "due": due_at, "finished": finished_at} for i in range(count)],
    )


async def count(database: Database, table: str, like: str) -> int:
    key = {"idempotency_keys": "key", "auth_nonces": "nonce", "stream_tickets": "digest"}.get(
        table, "onramp_session_id"
    )
    async with database.engine.connect() as connection:
        found = await connection.scalar(
            text(f"SELECT count(*) FROM {table} WHERE {key} LIKE :like"),  # noqa: S608
            {"like": f"{like}%"},
        )
    return int(found or 0)


async def old_and_live_rows(database: Database) -> None:
    now = utcnow()
    await add_keys(database, "expired", 25, now - 2 * DAY)
    await add_keys(database, "live", 5, now - timedelta(hours=23))
    await add_nonces(database, "expired", 25, now - timedelta(hours=2))
    await add_nonces(database, "live", 5, now - timedelta(minutes=30))
    await add_tickets(database, "expired", 25, now - timedelta(hours=2))
    await add_tickets(database, "live", 5, now - timedelta(minutes=30))
    await add_checks(database, "finished-long-ago", 25, now - 40 * DAY, now - 40 * DAY)
    await add_checks(database, "finished-lately", 5, now - 2 * DAY, now - 2 * DAY)
    await add_checks(database, "open", 5, now - 40 * DAY, None)  # due, never finished


async def test_rows_past_their_retention_go_in_batches_and_live_rows_stay(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await old_and_live_rows(database)
    batches: list[int] = []

    def counted(delete: Callable[..., Awaitable[int]]) -> Callable[..., Awaitable[int]]:
        async def wrapper(*args: object) -> int:
            went = await delete(*args)
            batches.append(went)
            return went

        return wrapper

    monkeypatch.setattr(
        idempotency_keys, "delete_expired", counted(idempotency_keys.delete_expired)
    )
    cleared = await run_retention(database, retention(), now=utcnow())

    deleted = {(c.table, c.outcome): c.rows for c in cleared}
    assert deleted[("idempotency_keys", "deleted")] == 25
    assert deleted[("auth_nonces", "deleted")] == 25
    assert deleted[("stream_tickets", "deleted")] == 25
    assert deleted[("delivery_checks", "deleted")] == 25
    assert batches == [10, 10, 5]
    assert await count(database, "idempotency_keys", "expired") == 0
    assert await count(database, "idempotency_keys", "live") == 5
    assert await count(database, "auth_nonces", "expired") == 0
    assert await count(database, "auth_nonces", "live") == 5
    assert await count(database, "stream_tickets", "expired") == 0
    assert await count(database, "stream_tickets", "live") == 5
    assert await count(database, "delivery_checks", "finished-long-ago") == 0
    assert await count(database, "delivery_checks", "finished-lately") == 5
    assert await count(database, "delivery_checks", "open") == 5


async def test_a_dry_run_counts_and_deletes_nothing(database: Database) -> None:
    await old_and_live_rows(database)
    cleared = await run_retention(database, retention(), now=utcnow(), dry_run=True)
    would = {c.table: c.rows for c in cleared if c.outcome == "would_delete"}
    assert would == {
        "idempotency_keys": 25,
        "auth_nonces": 25,
        "stream_tickets": 25,
        "delivery_checks": 25,
        "merchant_webhook_attempts": 0,
        "merchant_webhook_deliveries": 0,
        "merchant_webhook_events": 0,
        "webhook_events": 0,
    }
    assert await count(database, "idempotency_keys", "expired") == 25


async def test_the_worker_runs_the_job_on_its_schedule(database: Database) -> None:
    await add_keys(database, "expired", 15, utcnow() - 2 * DAY)
    settings = ChainSettings()
    chains = Chains(settings)
    every = retention(RETENTION_INTERVAL_SECONDS="0.3")
    worker = DeliveryWorker(
        database, chains, settings, beside=[RetentionSchedule(database, every).run]
    )
    stop = asyncio.Event()
    running = asyncio.ensure_future(worker.run(stop, idle_seconds=0.05))
    try:
        await asyncio.sleep(0.1)
        assert await count(database, "idempotency_keys", "expired") == 15  # not at start
        for _ in range(50):
            await asyncio.sleep(0.1)
            if await count(database, "idempotency_keys", "expired") == 0:
                break
        assert await count(database, "idempotency_keys", "expired") == 0
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
        await chains.close()


# PostgreSQL only: SQLite has one writer at a time, so there is no lock to take.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_one_process_at_a_time_runs_the_job(database: Database, database_url: str) -> None:
    await add_keys(database, "expired", 3, utcnow() - 2 * DAY)
    schedule = RetentionSchedule(database, retention())
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
        assert await schedule.run_once() is False
        assert await count(database, "idempotency_keys", "expired") == 3
        # Unlocked before closing: a closed connection's backend lets go a moment later.
        other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
    assert await schedule.run_once() is True
    assert await schedule.run_once() is True  # the lock was given back
    assert await count(database, "idempotency_keys", "expired") == 0


# The command runs the job tested above on both databases; once through the CLI is enough.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_onramp_retention_run_reports_as_json(database_url: str, tmp_path: Path) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        await add_checks(database, "finished-long-ago", 3, utcnow() - 40 * DAY, utcnow() - 40 * DAY)
    finally:
        await database.dispose()
    env = {"DATABASE_URL": database_url, "DELIVERY_CHECK_RETENTION_DAYS": "7"}
    dry = run_onramp("retention", "run", "--dry-run", "--json", cwd=tmp_path, **env)
    assert dry.returncode == 0, dry.stderr
    assert {"table": "delivery_checks", "outcome": "would_delete", "rows": 3}.items() <= next(
        r for r in json.loads(dry.stdout) if r["table"] == "delivery_checks"
    ).items()
    done = run_onramp("retention", "run", "--json", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    gone = next(r for r in json.loads(done.stdout) if r["table"] == "delivery_checks")
    assert (gone["outcome"], gone["rows"]) == ("deleted", 3)
