"""Payment metrics as Prometheus scrapes them from `/metrics` of the real app: sessions,
volume, Stripe calls and webhook lag move once per real change, never for a replay."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.merchant_webhooks import outbox
from service.onramp.stripe_client import QUOTES_PATH, SESSIONS_PATH, _operation
from service.onramp.updates import OnrampUpdate, apply_update
from service.settings import DatabaseSettings
from service.sql import RollBack
from tests.onramp.conftest import Caller, new_wallet
from tests.support.metrics import Samples, samples, value
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign
from tests.webhooks.test_receive import a_session


async def scrape(client: AsyncTestClient[Litestar]) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_purchase_counts_once_however_often_it_is_replayed(
    make_onramp_app: Callable[..., Litestar], stripe: RunningStripe
) -> None:
    app = make_onramp_app(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with AsyncTestClient(app=app) as client:
        caller = Caller(client, new_wallet())
        before = await scrape(client)
        body = {"walletAddress": caller.wallet, "sourceAmount": "123.45"}
        created = await caller.create(body, key="metrics-once")
        assert created.status_code == 201, created.text
        replayed = await caller.create(body, key="metrics-once")
        assert replayed.headers["idempotent-replayed"] == "true"
        session = created.json()
        event = encode(
            onramp_event(
                session["stripeSessionId"],
                "fulfillment_complete",
                transaction_id="0x" + "ab" * 32,
                destination_amount="120.00",
            )
        )
        outcomes = []
        for _ in range(2):  # Stripe delivering the same event again
            response = await client.post(
                "/api/v1/webhooks/stripe", content=event, headers={"Stripe-Signature": sign(event)}
            )
            outcomes.append(response.json()["outcome"])
        assert outcomes == ["applied", "duplicate"]
        after = await scrape(client)

    assert moved(before, after, "onramp_sessions_created_total") == 1
    status = "onramp_session_status_changes_total"
    assert moved(before, after, status, status="fulfillment_complete") == 1
    assert moved(before, after, status, status="requires_payment") == 0
    volume = moved(before, after, "onramp_source_amount_total", currency="usd")
    assert volume == pytest.approx(123.45)
    calls = "onramp_stripe_calls_total"
    assert moved(before, after, calls, operation="create", outcome="ok") == 1
    assert moved(before, after, "onramp_stripe_call_seconds_count", operation="create") == 1
    assert moved(before, after, "onramp_webhook_lag_seconds_count") == 1
    assert value(after, "onramp_webhook_lag_seconds_bucket", le="5.0") >= 1


async def test_stripe_calls_are_counted_by_operation_and_outcome(
    caller: Caller, client: AsyncTestClient[Litestar], stripe: RunningStripe
) -> None:
    before = await scrape(client)
    quote = await caller.get("/api/v1/onramp/quotes", sourceAmount="41.00")
    assert quote.status_code == 200, quote.text
    stripe.faults(fail=1, failStatus=503)
    failed = await caller.create()
    assert failed.status_code == 502
    stripe.faults(fail=1, failStatus=400)
    refused = await caller.create()
    assert refused.status_code == 422, refused.text
    after = await scrape(client)

    calls = "onramp_stripe_calls_total"
    assert moved(before, after, calls, operation="quote", outcome="ok") == 1
    assert moved(before, after, calls, operation="create", outcome="unavailable") == 1
    assert moved(before, after, calls, operation="create", outcome="stripe_error") == 1
    assert moved(before, after, calls, operation="create", outcome="ok") == 0
    assert moved(before, after, "onramp_sessions_created_total") == 0


async def test_a_dry_run_moves_nothing_and_counts_nothing(
    database_url: str, client: AsyncTestClient[Litestar]
) -> None:
    """A status change counts only once its transaction has committed."""
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    session = await a_session(database)
    update = OnrampUpdate(session.stripe_session_id or "", None, "requires_payment", None, None)
    before = await scrape(client)
    async with database.transaction() as sql:
        assert (await apply_update(sql, update, utcnow(), checks, outbox)).outcome == "applied"
        raise RollBack
    middle = await scrape(client)
    async with database.transaction() as sql:
        assert (await apply_update(sql, update, utcnow(), checks, outbox)).outcome == "applied"
    after = await scrape(client)
    await database.dispose()

    status = "onramp_session_status_changes_total"
    assert moved(before, middle, status, status="requires_payment") == 0
    assert moved(middle, after, status, status="requires_payment") == 1


def test_each_stripe_path_is_named_as_its_operation() -> None:
    assert _operation("post", SESSIONS_PATH) == "create"
    assert _operation("get", SESSIONS_PATH) == "list"
    assert _operation("get", f"{SESSIONS_PATH}/cos_123") == "retrieve"
    assert _operation("get", QUOTES_PATH) == "quote"
