"""POST /api/v1/webhooks/stripe through the real app, on PostgreSQL and SQLite."""

from __future__ import annotations

import random
import secrets
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import select

from service.database import Database
from service.delivery.models import DeliveryCheck
from service.merchant_webhooks.models import OutgoingEvent
from service.onramp import updates
from service.onramp.models import OnrampSession
from service.webhooks.models import WebhookEvent
from service.webhooks.replay import replay_events
from service.webhooks.repository import move_and_record
from tests.support.orm import orm_session
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

PATH = "/api/v1/webhooks/stripe"


async def a_session(database: Database, stripe_id: str | None = None) -> OnrampSession:
    session = OnrampSession(
        wallet_address="0x52908400098527886E0F7030069857D2E4169EE7",
        stripe_session_id=stripe_id if stripe_id is not None else f"cos_{secrets.token_hex(8)}",
        client_secret="cos_x_secret_y",
        source_amount="100.00",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
    )
    async with orm_session(database) as db, db.begin():
        db.add(session)
    return session


async def reload(database: Database, session_id: str) -> OnrampSession:
    async with orm_session(database) as db:
        found = await db.get(OnrampSession, session_id)
        assert found is not None
        return found


async def stored_events(database: Database) -> list[WebhookEvent]:
    async with orm_session(database) as db:
        return list((await db.exec(select(WebhookEvent))).all())


async def deliver(
    client: AsyncTestClient[Litestar], event: dict[str, Any], secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    body = encode(event)
    return await client.post(
        PATH,
        content=body,
        headers={"Stripe-Signature": sign(body, secret), "content-type": "application/json"},
    )


async def test_a_signed_event_moves_the_session_and_is_logged(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    event = onramp_event(session.stripe_session_id or "", "requires_payment")
    response = await deliver(client, event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "eventId": event["id"], "outcome": "applied"}
    assert (await reload(database, session.id)).status == "requires_payment"
    [logged] = await stored_events(database)
    assert logged.id == event["id"]
    assert logged.type == "crypto.onramp_session_updated"
    assert logged.onramp_session_id == session.id
    assert logged.stripe_session_id == session.stripe_session_id
    assert logged.outcome == "applied"
    assert logged.processed_at is not None
    assert logged.payload == encode(event).decode()


async def test_a_duplicate_delivery_changes_nothing(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    event = onramp_event(session.stripe_session_id or "", "requires_payment")
    await deliver(client, event)
    again = await deliver(client, event)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert len(await stored_events(database)) == 1


async def test_an_older_event_never_moves_a_session_back(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    sid = session.stripe_session_id or ""
    await deliver(client, onramp_event(sid, "fulfillment_processing"))
    late = await deliver(client, onramp_event(sid, "requires_payment"))
    assert late.json()["outcome"] == "superseded"
    assert (await reload(database, session.id)).status == "fulfillment_processing"
    await deliver(client, onramp_event(sid, "fulfillment_complete", transaction_id="0x" + "1" * 64))
    rejected = await deliver(client, onramp_event(sid, "rejected"))
    assert rejected.json()["outcome"] == "superseded"
    assert (await reload(database, session.id)).status == "fulfillment_complete"


async def test_fulfilment_stores_the_transaction_and_schedules_a_delivery_check(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    tx = "0x" + "ab" * 32
    event = onramp_event(
        session.stripe_session_id or "",
        "fulfillment_complete",
        transaction_id=tx,
        destination_amount="98.49",
    )
    assert (await deliver(client, event)).json()["outcome"] == "applied"
    fulfilled = await reload(database, session.id)
    assert (fulfilled.transaction_hash, fulfilled.destination_amount) == (tx, "98.49")
    assert fulfilled.delivery_status == "pending"
    async with orm_session(database) as db:
        checks = (await db.exec(select(DeliveryCheck))).all()
        merchant_events = (await db.exec(select(OutgoingEvent))).all()
    assert [check.onramp_session_id for check in checks] == [session.id]
    # On PostgreSQL the move, its check and its merchant event were one statement, which
    # leaves the body to the dispatcher; SQLite's transaction renders it.
    [merchant_event] = merchant_events
    assert (merchant_event.body is None) == (not database.settings.is_sqlite)


async def test_a_later_event_fills_in_a_missing_transaction_id(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    sid = session.stripe_session_id or ""
    await deliver(client, onramp_event(sid, "fulfillment_complete"))
    tx = "0x" + "cd" * 32
    filled = await deliver(client, onramp_event(sid, "fulfillment_complete", transaction_id=tx))
    assert filled.json()["outcome"] == "applied"
    assert (await reload(database, session.id)).transaction_hash == tx


async def test_fees_come_with_newer_news_and_fill_a_gap_from_older_news(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    sid = session.stripe_session_id or ""

    def with_fees(status: str, network: Any, transaction: Any) -> dict[str, Any]:
        event = onramp_event(sid, status)
        details = event["data"]["object"]["transaction_details"]
        details["fees"] = {"network_fee_amount": network, "transaction_fee_amount": transaction}
        return event

    await deliver(client, with_fees("fulfillment_processing", "abc", 1.5))
    unread = await reload(database, session.id)
    assert (unread.network_fee_amount, unread.transaction_fee_amount) == (None, None)
    await deliver(client, onramp_event(sid, "fulfillment_complete"))
    older = await deliver(client, with_fees("fulfillment_processing", "0.01", "1.50"))
    assert older.json()["outcome"] == "applied"
    filled = await reload(database, session.id)
    assert (filled.network_fee_amount, filled.transaction_fee_amount) == ("0.01", "1.50")
    again = await deliver(client, with_fees("fulfillment_processing", "0.02", "1.60"))
    assert again.json()["outcome"] == "superseded"
    kept = await reload(database, session.id)
    assert (kept.network_fee_amount, kept.transaction_fee_amount) == ("0.01", "1.50")


async def test_newer_news_restates_the_fees_and_a_late_transaction_brings_them_too(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    first, second = await a_session(database), await a_session(database)

    def with_fees(sid: str, status: str, fees: tuple[str, str], **more: Any) -> dict[str, Any]:
        event = onramp_event(sid, status, **more)
        event["data"]["object"]["transaction_details"]["fees"] = {
            "network_fee_amount": fees[0],
            "transaction_fee_amount": fees[1],
        }
        return event

    one = first.stripe_session_id or ""
    await deliver(client, with_fees(one, "fulfillment_processing", ("0.01", "1.50")))
    await deliver(client, with_fees(one, "fulfillment_complete", ("0.02", "1.49")))
    restated = await reload(database, first.id)
    assert (restated.network_fee_amount, restated.transaction_fee_amount) == ("0.02", "1.49")

    two, tx = second.stripe_session_id or "", "0x" + "ef" * 32
    await deliver(client, onramp_event(two, "fulfillment_complete"))
    late = with_fees(two, "fulfillment_complete", ("0.01", "1.50"), transaction_id=tx)
    assert (await deliver(client, late)).json()["outcome"] == "applied"
    filled = await reload(database, second.id)
    assert filled.transaction_hash == tx
    assert (filled.network_fee_amount, filled.transaction_fee_amount) == ("0.01", "1.50")


async def test_an_event_before_the_stripe_id_is_stored_finds_the_session_by_metadata(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database, stripe_id="")
    async with orm_session(database) as db, db.begin():
        stored = await db.get(OnrampSession, session.id)
        assert stored is not None
        stored.stripe_session_id = None
    event = onramp_event("cos_early", "requires_payment", onramp_session_id=session.id)
    assert (await deliver(client, event)).json()["outcome"] == "applied"
    moved = await reload(database, session.id)
    assert (moved.status, moved.stripe_session_id) == ("requires_payment", "cos_early")


async def test_other_events_and_unknown_sessions_are_stored_and_change_nothing(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    other = {
        "id": "evt_other",
        "object": "event",
        "type": "charge.succeeded",
        "created": 1700000000,
        "data": {"object": {"object": "charge", "id": "ch_1"}},
    }
    assert (await deliver(client, other)).json()["outcome"] == "ignored"
    unknown = await deliver(client, onramp_event("cos_nobody", "requires_payment"))
    assert unknown.json()["outcome"] == "unknown_session"
    assert {e.outcome for e in await stored_events(database)} == {"ignored", "unknown_session"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": "t=1,v1=00"},
        {"Stripe-Signature": sign(b"something else")},
        {"Stripe-Signature": sign(b"x", "whsec_someone_else")},
    ],
)
async def test_unverified_deliveries_are_400_and_store_nothing(
    client: AsyncTestClient[Litestar], database: Database, headers: dict[str, str]
) -> None:
    session = await a_session(database)
    body = encode(onramp_event(session.stripe_session_id or "", "requires_payment"))
    response = await client.post(PATH, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_signature_invalid"
    assert await stored_events(database) == []
    assert (await reload(database, session.id)).status == "initialized"


async def test_a_signed_body_that_is_not_an_event_is_400(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    for body in (b"[1, 2]", b"not json", b'{"id": "evt_1"}'):
        response = await client.post(PATH, content=body, headers={"Stripe-Signature": sign(body)})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_event"
    assert await stored_events(database) == []


async def test_bodies_over_one_mebibyte_are_413(client: AsyncTestClient[Litestar]) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(PATH, content=body, headers={"Stripe-Signature": sign(body)})
    assert response.status_code == 413


async def test_without_a_signing_secret_the_route_is_503(make_client: Any) -> None:
    async with make_client() as client:
        body = encode(onramp_event("cos_x", "requires_payment"))
        response = await client.post(PATH, content=body, headers={"Stripe-Signature": sign(body)})
    assert response.status_code == 503
    assert response.json()["code"] == "webhooks_not_configured"


async def test_a_failure_is_recorded_and_the_redelivery_applies_it(
    client: AsyncTestClient[Litestar], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await a_session(database)
    event = onramp_event(session.stripe_session_id or "", "requires_payment")

    async def broken(*_: Any) -> None:
        raise RuntimeError("bug in processing")

    # Both ways of applying it: in one statement (PostgreSQL) and in a transaction.
    monkeypatch.setattr("service.webhooks.service.move_and_record", broken)
    monkeypatch.setattr("service.webhooks.service.apply_update", broken)
    failed = await deliver(client, event)
    assert failed.status_code == 500
    [logged] = await stored_events(database)
    assert (logged.outcome, logged.processed_at) == ("failed", None)
    assert "bug in processing" in (logged.error or "")
    monkeypatch.setattr("service.webhooks.service.move_and_record", move_and_record)
    monkeypatch.setattr("service.webhooks.service.apply_update", updates.apply_update)
    redelivered = await deliver(client, event)
    assert redelivered.json()["outcome"] == "applied"
    assert (await reload(database, session.id)).status == "requires_payment"


async def test_metrics_count_events_by_type_and_outcome(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    await deliver(client, onramp_event(session.stripe_session_id or "", "requires_payment"))
    await client.post(PATH, content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    text = (await client.get("/metrics")).text
    assert (
        'onramp_webhook_events_total{outcome="applied",type="crypto.onramp_session_updated"}'
        in text
    )
    assert "onramp_webhook_signature_failures_total" in text
    assert "onramp_webhook_processing_seconds_bucket" in text


async def test_any_arrival_order_ends_at_the_furthest_status_and_replay_agrees(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    rng = random.Random(11)
    happy = ["requires_payment", "fulfillment_processing", "fulfillment_complete"]
    expected: dict[str, str] = {}
    deliveries: list[dict[str, Any]] = []
    for _ in range(25):
        session = await a_session(database)
        length = rng.randint(1, 3)
        sequence = happy[:length] + (["rejected"] if length < 3 and rng.random() < 0.4 else [])
        events = [onramp_event(session.stripe_session_id or "", status) for status in sequence]
        arrived = [rng.choice(events) for _ in range(rng.randint(1, 6))]
        expected[session.id] = max(
            (e["data"]["object"]["status"] for e in arrived), key=sequence.index
        )
        deliveries += arrived
    rng.shuffle(deliveries)
    for event in deliveries:
        assert (await deliver(client, event)).status_code == 200
    async with orm_session(database) as db:
        rows = (await db.exec(select(OnrampSession))).all()
    assert {row.id: row.status for row in rows} == expected

    replayed = await replay_events(database)
    assert {r.outcome for r in replayed} <= {"superseded"}
    async with orm_session(database) as db:
        rows = (await db.exec(select(OnrampSession))).all()
    assert {row.id: row.status for row in rows} == expected


async def test_signed_events_with_nul_characters_or_long_fields_are_clean_answers(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    nul = onramp_event(session.stripe_session_id or "", "requires_payment")
    nul["type"] = "crypto.onramp_session_updated\x00"
    response = await deliver(client, nul)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_event"
    long_version = onramp_event(session.stripe_session_id or "", "requires_payment")
    long_version["api_version"] = "v" * 200
    assert (await deliver(client, long_version)).json()["outcome"] == "applied"
