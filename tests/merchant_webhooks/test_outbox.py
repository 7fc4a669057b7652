"""The outbox's deliveries, written with the event: one to each enabled endpoint that
takes its type, on each database (PostgreSQL writes both in one statement)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.merchant_webhooks.conftest import register
from tests.merchant_webhooks.test_dispatch import a_stored_session, stripe_moves
from tests.support.orm import run_sql
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign


async def test_a_status_move_is_delivered_to_each_enabled_endpoint_that_takes_it(
    hooks_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = hooks_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with AsyncTestClient(app=create_app(settings)) as client:
        every = await register(client, "http://127.0.0.1:9/every")
        named = await register(
            client, "http://127.0.0.1:9/named", events=["delivery.failed", "onramp_session.updated"]
        )
        other = await register(client, "http://127.0.0.1:9/other", events=["delivery.confirmed"])
        disabled = await register(client, "http://127.0.0.1:9/disabled")
        await run_sql(
            database_url,
            "UPDATE merchant_webhook_endpoints SET status = 'disabled' WHERE id = :id RETURNING id",
            id=disabled["id"],
        )
        session_id, stripe_id = await a_stored_session(database_url)
        await stripe_moves(client, stripe_id, "requires_payment")
    [(event_id, kind)] = await run_sql(
        database_url,
        "SELECT id, type FROM merchant_webhook_events WHERE onramp_session_id = :id",
        id=session_id,
    )
    assert kind == "onramp_session.updated"
    deliveries = await run_sql(
        database_url,
        "SELECT endpoint_id, attempts, outcome, finished_at, claimed_until, due_at = created_at"
        " FROM merchant_webhook_deliveries WHERE event_id = :id ORDER BY endpoint_id",
        id=event_id,
    )
    assert [d[0] for d in deliveries] == sorted([every["id"], named["id"]])
    assert all(tuple(d[1:]) == (0, None, None, None, True) for d in deliveries)
    assert other["id"] not in {d[0] for d in deliveries}


async def test_a_stripe_event_delivered_again_and_at_once_makes_one_merchant_event(
    hooks_settings: Callable[..., Settings], database_url: str
) -> None:
    """The merchant event is written with the Stripe event's log entry (in one statement on
    PostgreSQL): redeliveries of the event, concurrent and later, add none."""
    settings = hooks_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with AsyncTestClient(app=create_app(settings)) as client:
        endpoint = await register(client, "http://127.0.0.1:9/every")
        session_id, stripe_id = await a_stored_session(database_url)
        body = encode(onramp_event(stripe_id, "requires_payment"))
        headers = {"Stripe-Signature": sign(body)}

        async def deliver() -> str:
            answer = await client.post("/api/v1/webhooks/stripe", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            outcome: str = answer.json()["outcome"]
            return outcome

        outcomes = await asyncio.gather(*(deliver() for _ in range(6)))
        outcomes.append(await deliver())
    assert sorted(outcomes) == ["applied", *["duplicate"] * 6]
    events = await run_sql(
        database_url,
        "SELECT id FROM merchant_webhook_events WHERE onramp_session_id = :id",
        id=session_id,
    )
    assert len(events) == 1
    deliveries = await run_sql(
        database_url,
        "SELECT endpoint_id FROM merchant_webhook_deliveries WHERE event_id = :id",
        id=events[0][0],
    )
    assert deliveries == [(endpoint["id"],)]
