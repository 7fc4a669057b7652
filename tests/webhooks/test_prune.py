"""`onramp webhooks prune`: old events of settled sessions go, in batches; what a
session may still need stays; on both databases, through the real command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from service.database import Database
from service.onramp.models import OnrampSession
from service.webhooks.models import WebhookEvent
from tests.support.orm import orm_session
from tests.support.processes import run_onramp

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=100)


def session(name: str, status: str, delivery: str = "not_started") -> OnrampSession:
    return OnrampSession(
        wallet_address="0x52908400098527886E0F7030069857D2E4169EE7",
        stripe_session_id=f"cos_{name}",
        status=status,
        delivery_status=delivery,
        source_amount="10.00",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
    )


def event(
    event_id: str,
    received_at: datetime,
    *,
    oid: str | None = None,
    sid: str | None = None,
    outcome: str | None = "applied",
    kind: str = "crypto.onramp_session_updated",
) -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        type=kind,
        created=received_at,
        onramp_session_id=oid,
        stripe_session_id=sid,
        payload="{}",
        received_at=received_at,
        processed_at=None if outcome in (None, "failed") else received_at,
        outcome=outcome,
        attempts=1,
    )


async def an_old_event_log(database: Database) -> None:
    rejected = session("rejected", "rejected")
    confirmed = session("confirmed", "fulfillment_complete", "confirmed")
    mismatch = session("mismatch", "fulfillment_complete", "mismatch")
    pending = session("pending", "fulfillment_complete", "pending")
    paying = session("paying", "requires_payment")
    async with orm_session(database) as db, db.begin():
        db.add_all([rejected, confirmed, mismatch, pending, paying])
    events = [
        # Not needed: settled sessions, by our id or Stripe's; no session at all; an
        # unknown session past the 30 days.
        event("evt_gone_rejected", OLD, oid=rejected.id, sid="cos_rejected"),
        event("evt_gone_confirmed", OLD, oid=confirmed.id, outcome="superseded"),
        event("evt_gone_by_stripe_id", OLD, sid="cos_confirmed", outcome="ignored"),
        event("evt_gone_mismatch", OLD, oid=mismatch.id),
        event("evt_gone_other_type", OLD, outcome="ignored", kind="charge.succeeded"),
        event(
            "evt_gone_unknown", NOW - timedelta(days=40), sid="cos_lost", outcome="unknown_session"
        ),
        # Kept.
        event("evt_recent_settled", NOW - timedelta(days=3), oid=confirmed.id),
        event("evt_kept_pending", OLD, oid=pending.id, sid="cos_pending"),
        event("evt_kept_paying_by_stripe_id", OLD, sid="cos_paying", outcome="unknown_session"),
        event("evt_kept_failed", OLD, oid=rejected.id, outcome="failed"),
        event("evt_kept_never_processed", OLD, sid="cos_rejected", outcome=None),
        event(
            "evt_kept_unknown", NOW - timedelta(days=20), sid="cos_lost", outcome="unknown_session"
        ),
    ]
    async with orm_session(database) as db, db.begin():
        db.add_all(events)


async def stored_ids(database: Database) -> set[str]:
    async with orm_session(database) as db:
        return set((await db.exec(select(WebhookEvent.id))).all())


def prune(database_url: str, tmp_path: Path, *args: str) -> dict[tuple[str, str], int]:
    result = run_onramp(
        "webhooks",
        "prune",
        "--older-than",
        "7",
        "--json",
        *args,
        cwd=tmp_path,
        DATABASE_URL=database_url,
    )
    assert result.returncode == 0, result.stderr
    return {(row["outcome"], row["reason"]): row["events"] for row in json.loads(result.stdout)}


KEPT = {
    ("kept", "not_processed"): 2,
    ("kept", "session_not_settled"): 2,
    ("kept", "unknown_session_recent"): 1,
}


async def test_old_events_of_settled_sessions_go_and_needed_ones_stay(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    await an_old_event_log(database)
    everything = await stored_ids(database)

    preview = prune(database_url, tmp_path, "--dry-run")
    assert preview == {("would_delete", "no_session_needs_them"): 6, **KEPT}
    assert await stored_ids(database) == everything

    pruned = prune(database_url, tmp_path, "--batch-size", "4")
    assert pruned == {("deleted", "no_session_needs_them"): 6, **KEPT}
    left = await stored_ids(database)
    assert left == {event_id for event_id in everything if "_gone_" not in event_id}

    again = prune(database_url, tmp_path)
    assert again == {("deleted", "no_session_needs_them"): 0, **KEPT}
    assert await stored_ids(database) == left


async def test_the_human_report_is_a_table_with_a_summary(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    await an_old_event_log(database)
    result = run_onramp(
        "webhooks",
        "prune",
        "--older-than",
        "7",
        "--dry-run",
        cwd=tmp_path,
        DATABASE_URL=database_url,
        COLUMNS="150",
    )
    assert result.returncode == 0, result.stderr
    assert "Webhook prune (dry run: nothing deleted)" in result.stdout
    assert "session_not_settled" in result.stdout
    assert "events older than 7 days: 6 would be deleted, 5 kept" in result.stdout


def test_a_missing_or_bad_age_is_a_clear_refusal(tmp_path: Path) -> None:
    for args in ((), ("--older-than", "0"), ("--older-than", "soon")):
        result = run_onramp("webhooks", "prune", *args, cwd=tmp_path)
        assert result.returncode == 2
        assert "--older-than" in result.stderr
        assert "Traceback" not in result.stderr
