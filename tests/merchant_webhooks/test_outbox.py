"""The outbox's deliveries, written with the event: one to each enabled endpoint that
takes its type, on each database (PostgreSQL writes both in one statement)."""

from __future__ import annotations

from collections.abc import Callable

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.merchant_webhooks.conftest import register
from tests.merchant_webhooks.test_dispatch import a_stored_session, stripe_moves
from tests.support.orm import run_sql
from tests.support.webhooks import WEBHOOK_SECRET


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
