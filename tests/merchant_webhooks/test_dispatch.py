"""The dispatcher against real local receivers: retries with one webhook-id, rotation,
nothing from a rollback, no double sends between two dispatchers, refusals at each
attempt when deployed, and redirects not followed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from service.app import create_app
from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.merchant_webhooks import outbox, payloads
from service.merchant_webhooks.dispatcher import Dispatcher
from service.onramp import repository
from service.onramp.updates import apply_update, update_from_stripe
from service.settings import DatabaseSettings, OutgoingWebhookSettings, Settings
from service.sql import RollBack
from tests.merchant_webhooks.conftest import BASE, reader, register, writer
from tests.support.environment import STAGING_ENV
from tests.support.orm import run_sql
from tests.support.receivers import Receiver, receiving
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign
from tests.webhooks.test_receive import a_session

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@asynccontextmanager
async def dispatching(
    database_url: str, retries: str = "0,0,0", **options: Any
) -> AsyncIterator[Dispatcher]:
    """A dispatcher running until the block ends, as the worker runs it."""
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    settings = OutgoingWebhookSettings.model_validate({"OUTGOING_WEBHOOK_RETRY_SECONDS": retries})
    options = {"deployed": False, "idle_seconds": 0.05, **options}
    dispatcher = Dispatcher(database, settings, **options)
    stop = asyncio.Event()
    running = asyncio.ensure_future(dispatcher.run(stop))
    try:
        yield dispatcher
    finally:
        stop.set()
        await running
        await database.dispose()


@pytest.fixture
async def app(hooks_settings: Callable[..., Settings]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = hooks_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def stripe_moves(
    client: AsyncTestClient[Litestar], stripe_id: str, status: str, **details: Any
) -> None:
    """Stripe's signed webhook, through the real route."""
    body = encode(onramp_event(stripe_id, status, **details))
    answer = await client.post(
        "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
    )
    assert answer.json()["outcome"] == "applied", answer.text


async def a_stored_session(database_url: str) -> tuple[str, str]:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        session = await a_session(database)
    finally:
        await database.dispose()
    assert session.stripe_session_id is not None
    return session.id, session.stripe_session_id


async def received(receiver: Receiver, count: int) -> list[Any]:
    return await asyncio.to_thread(receiver.wait_for, count)


async def test_a_failing_receiver_gets_the_same_webhook_id_until_it_answers(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    session_id, stripe_id = await a_stored_session(database_url)
    with receiving(answers=[500, 500, 200]) as receiver:
        endpoint = await register(app, receiver.url)
        await stripe_moves(app, stripe_id, "requires_payment")
        async with dispatching(database_url):
            requests = await received(receiver, 3)
            log = await _log_of(app, endpoint["id"], 3)
    ids = {r.headers["webhook-id"] for r in requests}
    assert len(ids) == 1
    assert ids.pop().startswith("msg_")
    timestamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert timestamps == sorted(timestamps)
    for request in requests:  # each attempt signed afresh, the body the same
        assert Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert request.body == requests[0].body
    event = json.loads(requests[0].body)
    assert event["type"] == "onramp_session.updated"
    assert event["data"]["id"] == session_id
    assert event["data"]["status"] == "requires_payment"
    assert "clientSecret" not in event["data"]
    assert isinstance(event["data"]["version"], int)
    assert [(a["attempt"], a["statusCode"]) for a in log] == [(3, 200), (2, 500), (1, 500)]
    assert log[1]["error"] == "answered 500"
    assert {a["eventId"] for a in log} == {requests[0].headers["webhook-id"]}
    kept = await run_sql(
        database_url, "SELECT max(length(response_body)) FROM merchant_webhook_attempts"
    )
    assert kept == [(1024,)]


async def _log_of(client: AsyncTestClient[Litestar], endpoint_id: str, count: int) -> list[Any]:
    """The delivery log once it holds `count` attempts (recorded after each round)."""
    for _ in range(200):
        log = (await client.get(f"{BASE}/{endpoint_id}/deliveries", headers=reader())).json()
        if len(log["items"]) >= count:
            return list(log["items"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"the log holds {log}")


async def test_both_secrets_verify_until_the_overlap_ends(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    _, stripe_id = await a_stored_session(database_url)
    now: list[datetime] = [utcnow()]
    with receiving() as receiver:
        endpoint = await register(app, receiver.url)
        rotated = await app.post(f"{BASE}/{endpoint['id']}/rotate-secret", headers=writer())
        old, new = endpoint["secret"], rotated.json()["secret"]
        async with dispatching(database_url, clock=lambda: now[0]):
            now[0] = utcnow() + timedelta(hours=23, minutes=59)
            await stripe_moves(app, stripe_id, "requires_payment")
            [during] = await received(receiver, 1)
            now[0] = utcnow() + timedelta(hours=24, seconds=1)
            await stripe_moves(app, stripe_id, "fulfillment_processing")
            after = (await received(receiver, 2))[1]
    assert _signed_by(during, old)
    assert _signed_by(during, new)
    assert _signed_by(after, new)
    assert not _signed_by(after, old)


def _signed_by(request: Any, secret: str) -> bool:
    """Whether the reference library's signature with `secret` is among the request's (the
    injected clock is a day ahead, past `verify`'s five minutes of tolerance)."""
    at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), tz=utcnow().tzinfo)
    expected = Webhook(secret).sign(request.headers["webhook-id"], at, request.body)
    return expected in request.headers["webhook-signature"].split(" ")


async def test_a_rolled_back_change_sends_no_event(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    _, stripe_id = await a_stored_session(database_url)
    update = update_from_stripe(onramp_event(stripe_id, "requires_payment")["data"]["object"])
    assert update is not None
    with receiving() as receiver:
        await register(app, receiver.url)
        database = Database(DatabaseSettings(DATABASE_URL=database_url))
        try:
            async with database.transaction() as sql:
                applied = await apply_update(sql, update, utcnow(), checks, outbox)
                assert applied.outcome == "applied"
                raise RollBack
        finally:
            await database.dispose()
        assert await run_sql(database_url, "SELECT count(*) FROM merchant_webhook_events") == [(0,)]
        await stripe_moves(app, stripe_id, "fulfillment_processing")  # a change that commits
        async with dispatching(database_url):
            [only] = await received(receiver, 1)
            await asyncio.sleep(0.3)  # a second, wrong event would have come by now
    assert len(receiver.received) == 1
    assert json.loads(only.body)["data"]["status"] == "fulfillment_processing"


async def test_a_move_applied_in_one_statement_is_sent_as_a_transaction_would_write_it(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    """On PostgreSQL a Stripe event that moves its session writes its merchant event in
    the same statement, which keeps the moved row (without the client secret) for the
    dispatcher to render: the merchant gets the bytes the outbox renders in a transaction
    from the row as read, and the event keeps them."""
    session_id, stripe_id = await a_stored_session(database_url)
    with receiving() as receiver:
        await register(app, receiver.url)
        await stripe_moves(app, stripe_id, "requires_payment")
        [(body, kind, created_at)] = await run_sql(
            database_url,
            "SELECT body, type, created_at FROM merchant_webhook_events"
            " WHERE onramp_session_id = :id",
            id=session_id,
        )
        assert body is None  # written by the one statement, rendered when sent
        database = Database(DatabaseSettings(DATABASE_URL=database_url))
        try:
            row = await repository.read(database, session_id)
        finally:
            await database.dispose()
        assert row is not None
        async with dispatching(database_url):
            [sent] = await received(receiver, 1)
    assert sent.body == payloads.render(kind, created_at, row)
    [(kept, snapshot)] = await run_sql(
        database_url,
        "SELECT body, session FROM merchant_webhook_events WHERE onramp_session_id = :id",
        id=session_id,
    )
    assert kept == sent.body  # kept as sent: a retry by any release sends these bytes
    assert row.client_secret is not None
    assert row.client_secret not in snapshot
    assert "client_secret" not in json.loads(snapshot)
    data = json.loads(sent.body)["data"]
    assert (data["id"], data["status"], data["version"]) == (
        session_id,
        "requires_payment",
        int(row.updated_at.timestamp() * 1_000_000),
    )


async def test_two_dispatchers_never_send_one_delivery_twice(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    sessions = [await a_stored_session(database_url) for _ in range(40)]
    with receiving(delay=0.02) as receiver:
        await register(app, receiver.url)
        for _, stripe_id in sessions:
            await stripe_moves(app, stripe_id, "requires_payment")
        async with dispatching(database_url), dispatching(database_url):
            requests = await received(receiver, 40)
            await asyncio.sleep(0.5)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(requests) >= 40
    assert len(ids) == len(set(ids)) == 40


async def test_deployed_each_attempt_checks_the_address_again(
    hooks_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    """Registered while its name pointed at a public address, then rebound to loopback:
    the attempt is refused, and nothing reaches the address."""
    from tests.merchant_webhooks.conftest import KEYS

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    async def rebound(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr("service.app.resolve", public)
    settings = hooks_settings(**{**STAGING_ENV, **KEYS, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    _, stripe_id = await a_stored_session(database_url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        endpoint = await register(client, "https://hooks.shop.example/in")
        await stripe_moves(client, stripe_id, "requires_payment")
        async with dispatching(database_url, "3600", deployed=True, resolver=rebound):
            [attempt] = await _log_of(client, endpoint["id"], 1)
    assert attempt["statusCode"] is None
    assert attempt["error"] == "refused: the URL resolves to a non-public address (loopback)"


async def test_a_redirect_is_a_failure_and_is_not_followed(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    _, stripe_id = await a_stored_session(database_url)
    with receiving() as target, receiving(answers=[302]) as redirecting:
        redirecting.location = target.url
        endpoint = await register(app, redirecting.url)
        await stripe_moves(app, stripe_id, "requires_payment")
        async with dispatching(database_url, retries="0"):
            log = await _log_of(app, endpoint["id"], 2)
    assert [(a["statusCode"], a["error"]) for a in log] == [
        (302, "redirect not followed (302)"),
        (302, "redirect not followed (302)"),
    ]
    assert target.received == []
    given_up = await run_sql(database_url, "SELECT outcome FROM merchant_webhook_deliveries")
    assert given_up == [("given_up",)]
