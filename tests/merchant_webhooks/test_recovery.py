"""An operator's recovery from the command line, against real receivers and the
dispatcher as the worker runs it: `onramp endpoints enable` brings back an endpoint
the dispatcher disabled, and `onramp endpoints replay` sends events again under the
`webhook-id` of their first delivery (Standard Webhooks: the receiver's idempotency
key), each in the audit trail as the operator who ran it.

The commands run in this process through click's runner, as in test_commands.py; the
events come from Stripe's signed webhooks through the real app, as in test_dispatch.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from service.app import create_app
from service.columns import utcnow
from service.settings import Settings
from tests.merchant_webhooks.test_commands import actions, onramp, succeeds, trail
from tests.merchant_webhooks.test_dispatch import (
    a_stored_session,
    dispatching,
    received,
    stripe_moves,
)
from tests.support.orm import run_sql
from tests.support.receivers import Received, Receiver, receiving
from tests.support.webhooks import WEBHOOK_SECRET

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# Long enough that no retry falls due unless a test moves the dispatcher's clock.
HOURLY = "3600,3600,3600"
# Time for a send that should not happen to have happened: the dispatcher looks for
# enabled endpoints and due deliveries every 0.05 s.
QUIET = 0.3
UNKNOWN = "we_" + "0" * 26


@pytest.fixture
async def app(hooks_settings: Callable[..., Settings]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = hooks_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def add(database_url: str, receiver: Receiver) -> dict[str, Any]:
    ran = await succeeds(database_url, "endpoints", "add", receiver.url, "--json")
    shown: dict[str, Any] = json.loads(ran.stdout)
    return shown


def moved(request: Received) -> tuple[str, str]:
    """The session and the status an `onramp_session.updated` delivery tells of."""
    data = json.loads(request.body)["data"]
    return data["id"], data["status"]


async def once_stored(database_url: str, query: str, wanted: Any, **params: Any) -> None:
    """Once `query`'s one value is `wanted`: the dispatcher records each round after its
    sends, so what the receiver got may be ahead of the tables for a moment."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        [(found,)] = await run_sql(database_url, query, **params)
        if found == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{query}: {found}, not {wanted}")


async def status_of(database_url: str, endpoint_id: str, wanted: str) -> None:
    """Once the stored endpoint has `wanted` status."""
    query = "SELECT status FROM merchant_webhook_endpoints WHERE id = :id"
    await once_stored(database_url, query, wanted, id=endpoint_id)


async def test_enable_brings_back_an_endpoint_the_dispatcher_disabled(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    first, first_stripe = await a_stored_session(database_url)
    _, second_stripe = await a_stored_session(database_url)
    third, third_stripe = await a_stored_session(database_url)
    with receiving(answers=[500, 500, 200]) as receiver:
        endpoint = await add(database_url, receiver)
        await stripe_moves(app, first_stripe, "requires_payment")
        start = utcnow()
        now: list[datetime] = [start]
        async with dispatching(database_url, HOURLY, clock=lambda: now[0]):
            # Failures only: the first attempt, then the next one five days on.
            await received(receiver, 1)
            now[0] = start + timedelta(days=5)
            await received(receiver, 2)
            await status_of(database_url, endpoint["id"], "disabled")

            # Disabled: the retry falls due and is not sent, a new event skips it.
            now[0] = start + timedelta(days=5, hours=2)
            await stripe_moves(app, second_stripe, "requires_payment")
            # An unknown id is refused and changes nothing: still nothing is sent.
            refused = await onramp(database_url, "endpoints", "enable", UNKNOWN)
            assert (refused.exit_code, refused.stderr) == (
                1,
                "onramp: not_found: No such endpoint.\n",
            )
            await asyncio.sleep(QUIET)
            assert len(receiver.received) == 2
            await status_of(database_url, endpoint["id"], "disabled")

            ran = await succeeds(database_url, "endpoints", "enable", endpoint["id"])
            assert ran.stdout == f"{endpoint['id']} enabled\n"
            # The retry still due goes out, then an event written from now on.
            resumed = (await received(receiver, 3))[2]
            await stripe_moves(app, third_stripe, "requires_payment")
            after = (await received(receiver, 4))[3]
            await asyncio.sleep(QUIET)
    failed = receiver.received[:2]
    assert [moved(r) for r in [*failed, resumed, after]] == [
        (first, "requires_payment"),
        (first, "requires_payment"),
        (first, "requires_payment"),
        (third, "requires_payment"),
    ]
    assert len(receiver.received) == 4  # the event written while it was disabled: never
    assert resumed.headers["webhook-id"] == failed[0].headers["webhook-id"]
    assert after.headers["webhook-id"] != resumed.headers["webhook-id"]
    assert await run_sql(
        database_url,
        "SELECT status, failing_since FROM merchant_webhook_endpoints WHERE id = :id",
        id=endpoint["id"],
    ) == [("enabled", None)]

    assert actions(await trail(database_url)) == [
        ("endpoints.add", endpoint["id"], "ok"),
        ("endpoints.enable", UNKNOWN, "failed"),
        ("endpoints.enable", endpoint["id"], "ok"),
    ]


async def delivered(database_url: str, count: int) -> None:
    """Once `count` deliveries are recorded as delivered."""
    query = "SELECT count(*) FROM merchant_webhook_deliveries WHERE outcome = 'delivered'"
    await once_stored(database_url, query, count)


async def test_replay_sends_events_again_under_their_first_webhook_id(
    app: AsyncTestClient[Litestar], database_url: str
) -> None:
    first, first_stripe = await a_stored_session(database_url)
    second, second_stripe = await a_stored_session(database_url)
    with receiving() as chosen_receiver, receiving() as other_receiver:
        chosen = await add(database_url, chosen_receiver)
        other = await add(database_url, other_receiver)
        async with dispatching(database_url, HOURLY):
            await stripe_moves(app, first_stripe, "requires_payment")
            await received(chosen_receiver, 1)
            # --since as an operator types it, to the second: after the first event.
            since = (utcnow() + timedelta(seconds=1)).replace(microsecond=0)
            await asyncio.sleep((since - utcnow()).total_seconds() + 0.01)
            await stripe_moves(app, first_stripe, "fulfillment_processing")
            await stripe_moves(app, second_stripe, "requires_payment")
            await received(chosen_receiver, 3)
            await received(other_receiver, 3)
            await delivered(database_url, 6)
            typed = since.strftime("%Y-%m-%dT%H:%M:%SZ")

            dry = await succeeds(
                database_url, "endpoints", "replay", "--since", typed, "--dry-run", "--json"
            )
            counted = {(r["endpoint_id"], r["events"]) for r in json.loads(dry.stdout)}
            assert counted == {(chosen["id"], 2), (other["id"], 2)}
            await asyncio.sleep(QUIET)
            assert (len(chosen_receiver.received), len(other_receiver.received)) == (3, 3)
            await delivered(database_url, 6)

            ran = await succeeds(
                database_url,
                "endpoints",
                "replay",
                "--since",
                typed,
                "--endpoint",
                chosen["id"],
                "--json",
            )
            assert json.loads(ran.stdout) == [{"endpoint_id": chosen["id"], "events": 2}]
            await received(chosen_receiver, 5)
            await delivered(database_url, 6)
            await asyncio.sleep(QUIET)
    assert (len(chosen_receiver.received), len(other_receiver.received)) == (5, 3)

    firsts = {moved(r): r for r in chosen_receiver.received[:3]}
    replayed = chosen_receiver.received[3:]
    assert sorted(moved(r) for r in replayed) == sorted(
        [(first, "fulfillment_processing"), (second, "requires_payment")]
    )
    for again in replayed:  # the first delivery's id and body, signed afresh
        original = firsts[moved(again)]
        assert again.headers["webhook-id"] == original.headers["webhook-id"]
        assert again.body == original.body
        assert Webhook(chosen["secret"]).verify(again.body, again.headers)
    # What a receiver deduplicating by webhook-id keeps: each event once.
    assert len({r.headers["webhook-id"] for r in chosen_receiver.received}) == 3

    rows = await trail(database_url)
    assert actions(rows) == [
        ("endpoints.add", chosen["id"], "ok"),
        ("endpoints.add", other["id"], "ok"),
        ("endpoints.replay", f"{typed}..", "dry_run"),
        ("endpoints.replay", f"{typed}.. {chosen['id']}", "ok"),
    ]
    assert [row["detail"] for row in rows[2:]] == [
        "4 deliveries would be sent again",
        "2 deliveries due again",
    ]
