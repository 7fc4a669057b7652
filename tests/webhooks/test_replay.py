"""`onramp webhooks replay`: re-applies stored events, idempotently, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from service.database import Database
from service.delivery.models import DeliveryCheck
from service.onramp.models import OnrampSession
from service.webhooks.models import WebhookEvent
from tests.support.orm import orm_session
from tests.support.processes import run_onramp
from tests.support.webhooks import encode, onramp_event


async def lost_events(database: Database) -> tuple[OnrampSession, list[str]]:
    """A session whose events were stored but never applied (a crash in between)."""
    session = OnrampSession(
        wallet_address="0x52908400098527886E0F7030069857D2E4169EE7",
        stripe_session_id="cos_replay",
        source_amount="100.00",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
    )
    events = [
        onramp_event("cos_replay", "requires_payment"),
        onramp_event("cos_replay", "fulfillment_complete", transaction_id="0x" + "2" * 64),
        {"id": "evt_other", "type": "charge.succeeded", "created": 1, "data": {"object": {}}},
    ]
    async with orm_session(database) as db, db.begin():
        db.add(session)
        for event in events:
            db.add(
                WebhookEvent(
                    id=event["id"],
                    type=event["type"],
                    created=datetime.now(UTC),
                    payload=encode(event).decode(),
                )
            )
    return session, [event["id"] for event in events]


def replay(database_url: str, tmp_path: Path, *args: str) -> list[dict[str, str]]:
    result = run_onramp(
        "webhooks", "replay", "--json", *args, cwd=tmp_path, DATABASE_URL=database_url
    )
    assert result.returncode == 0, result.stderr
    report: list[dict[str, str]] = json.loads(result.stdout)
    return report


async def status_of(database: Database, session_id: str) -> str:
    async with orm_session(database) as db:
        session = await db.get(OnrampSession, session_id)
        assert session is not None
        return session.status


async def test_replay_applies_lost_events_once(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    session, event_ids = await lost_events(database)

    preview = replay(database_url, tmp_path, "--dry-run")
    assert [row["outcome"] for row in preview] == ["applied", "applied", "ignored"]
    assert await status_of(database, session.id) == "initialized"

    applied = replay(database_url, tmp_path)
    assert [row["outcome"] for row in applied] == ["applied", "applied", "ignored"]
    assert applied[0]["onramp_session_id"] == session.id
    assert await status_of(database, session.id) == "fulfillment_complete"
    async with orm_session(database) as db:
        assert await db.get(DeliveryCheck, session.id) is not None
        logged = await db.get(WebhookEvent, event_ids[0])
        assert logged is not None
        assert (logged.outcome, logged.processed_at is not None) == ("applied", True)

    again = replay(database_url, tmp_path)
    assert [row["outcome"] for row in again] == ["superseded", "superseded", "ignored"]
    assert await status_of(database, session.id) == "fulfillment_complete"


async def test_replay_selects_events_by_id_and_time(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    session, event_ids = await lost_events(database)
    only_first = replay(database_url, tmp_path, "--event", event_ids[0])
    assert [row["event_id"] for row in only_first] == [event_ids[0]]
    assert await status_of(database, session.id) == "requires_payment"
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE webhook_events SET received_at = :t WHERE id = :id"),
            {"t": datetime(2020, 1, 1, tzinfo=UTC), "id": event_ids[1]},
        )
    recent = replay(database_url, tmp_path, "--since", "2021-01-01T00:00:00")
    assert event_ids[1] not in {row["event_id"] for row in recent}
    assert await status_of(database, session.id) == "requires_payment"


async def test_the_human_report_is_a_table_with_a_summary(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    await lost_events(database)
    result = run_onramp("webhooks", "replay", "--dry-run", cwd=tmp_path, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert "Webhook replay (dry run: nothing changed)" in result.stdout
    assert "3 in all: 2 applied, 1 ignored" in result.stdout
