"""Webhooks end to end over real HTTP: through the Stripe stand-in, and a storm across two
server processes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx

from tests.onramp.conftest import new_wallet, token_for
from tests.support.processes import service_env, serving
from tests.support.storm import (
    TRANSACTION,
    Delivery,
    insert_sessions,
    make_storm,
    send_storm,
    stored_outcome,
)
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET


def test_a_session_follows_the_stand_ins_signed_webhooks(
    tmp_path: Path, stripe: RunningStripe, migrated: dict[str, str]
) -> None:
    with serving(tmp_path, **service_env(migrated["postgresql"], stripe)) as base:
        stripe.send_webhooks_to(f"{base}/api/v1/webhooks/stripe", WEBHOOK_SECRET, duplicate=2)
        wallet = new_wallet()
        auth = {"Authorization": f"Bearer {token_for(wallet)}"}
        created = httpx.post(
            f"{base}/api/v1/onramp/sessions",
            json={"walletAddress": wallet, "sourceAmount": "100.00"},
            headers=auth,
        ).json()
        tx = "0x" + secrets.token_hex(32)
        assert created["fees"] is None
        stripe.advance(created["stripeSessionId"], "requires_payment")
        stripe.advance(created["stripeSessionId"], "fulfillment_complete", transactionId=tx)
        deliveries = stripe.wait_for_webhooks()
        assert len(deliveries) == 4
        assert all(d["delivered"] and d["status"] == 200 for d in deliveries)
        session = httpx.get(f"{base}/api/v1/onramp/sessions/{created['id']}", headers=auth).json()
    assert session["status"] == "fulfillment_complete"
    assert session["transactionHash"] == tx
    assert session["destinationAmount"] == "98.49"
    assert session["delivery"]["status"] == "pending"
    assert session["fees"] == {"networkFeeAmount": "0.01", "transactionFeeAmount": "1.50"}
    assert session["livemode"] is False


def test_a_storm_of_shuffled_duplicated_events_across_two_processes(
    tmp_path: Path, migrated: dict[str, str]
) -> None:
    database_url = migrated["postgresql"]
    sessions = insert_sessions(database_url, 500)
    storm = make_storm(sessions, seed=7)
    seen = Delivery()
    env = service_env(database_url)
    with serving(tmp_path, **env) as first, serving(tmp_path, **env) as second:
        urls = [f"{first}/api/v1/webhooks/stripe", f"{second}/api/v1/webhooks/stripe"]
        asyncio.run(send_storm(storm.events, urls, senders=16, seen=seen))
    assert set(seen.statuses) == {200}
    outcome = stored_outcome(database_url, sessions)
    assert outcome.statuses == storm.expected
    complete = {own for own, status in storm.expected.items() if status == "fulfillment_complete"}
    assert outcome.fulfilled == dict.fromkeys(complete, TRANSACTION)
    assert outcome.events == (storm.distinct, storm.distinct)
    assert outcome.unprocessed == 0
