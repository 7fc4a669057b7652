"""The tables hold what the service stores, the same way on PostgreSQL and SQLite."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from service.columns import new_id
from service.database import Database
from service.onramp import repository
from service.onramp.models import OnrampSession, SessionRow
from service.sql import RollBack
from service.webhooks.models import WebhookEvent
from tests.support.orm import orm_session

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"


def a_session(**fields: Any) -> OnrampSession:
    return OnrampSession(
        wallet_address=WALLET,
        source_amount="100.00",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
        **fields,
    )


async def test_a_session_round_trips_with_exact_amounts_and_utc_times(
    database: Database,
) -> None:
    created = datetime(2026, 11, 25, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    session = a_session(
        stripe_session_id="cos_123",
        destination_amount="99.120000000000000001",
        delivery_block_number=2**40,
        created_at=created,
    )
    async with orm_session(database) as db:
        db.add(session)
        await db.commit()
    async with orm_session(database) as db:
        stored = (await db.exec(select(OnrampSession))).one()
    assert stored.id == session.id
    assert stored.id.startswith("ors_")
    assert stored.destination_amount == "99.120000000000000001"
    assert stored.delivery_block_number == 2**40
    assert stored.created_at == created
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.status == "initialized"
    assert stored.delivery_status == "not_started"


def test_ids_sort_by_creation_time() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_id("ors"))
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert all(len(i) == 30 for i in ids)


async def test_a_stripe_session_belongs_to_one_onramp_session(database: Database) -> None:
    async with orm_session(database) as db:
        db.add(a_session(stripe_session_id="cos_dup"))
        await db.commit()
    async with orm_session(database) as db:
        db.add(a_session(stripe_session_id="cos_dup"))
        with pytest.raises(IntegrityError):
            await db.commit()


async def test_a_webhook_event_is_stored_once(database: Database) -> None:
    def event() -> WebhookEvent:
        return WebhookEvent(
            id="evt_1",
            type="crypto.onramp_session_updated",
            created=datetime.now(UTC),
            payload='{"id": "evt_1", "note": "ünïcode "}',
        )

    async with orm_session(database) as db:
        db.add(event())
        await db.commit()
    async with orm_session(database) as db:
        db.add(event())
        with pytest.raises(IntegrityError):
            await db.commit()
    async with orm_session(database) as db:
        stored = (await db.exec(select(WebhookEvent))).one()
    assert stored.payload == '{"id": "evt_1", "note": "ünïcode "}'
    assert stored.processed_at is None


async def test_a_transaction_commits_only_when_it_ends_cleanly(database: Database) -> None:
    def row(stripe_id: str | None = None) -> SessionRow:
        return SessionRow(WALLET, "1.00", "usd", "musd", "mezo", stripe_session_id=stripe_id)

    async def failing_step() -> None:
        async with database.transaction() as sql:
            await repository.insert(sql, row())
            raise RuntimeError("step two failed")

    with pytest.raises(RuntimeError):
        await failing_step()
    async with database.transaction() as sql:
        await repository.insert(sql, row("cos_rolled_back"))
        raise RollBack
    async with database.transaction() as sql:
        await repository.insert(sql, row("cos_kept"))
    async with orm_session(database) as db:
        rows = (await db.exec(select(OnrampSession))).all()
    assert [row.stripe_session_id for row in rows] == ["cos_kept"]


async def test_naive_datetimes_are_refused(database: Database) -> None:
    async with orm_session(database) as db:
        db.add(a_session(created_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive"):
            await db.commit()
