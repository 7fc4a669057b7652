"""Signed events that must not move a session: wrong event types, the other mode, and
events whose session ids disagree. None of them is ever a 500."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.database import Database
from service.onramp.models import OnrampSession
from tests.support.orm import orm_session
from tests.support.webhooks import onramp_event
from tests.webhooks.test_receive import a_session, deliver, reload, stored_events


@pytest.mark.parametrize(
    "event_type", ["charge.succeeded", "payment_intent.created", "crypto.onramp_session.created"]
)
async def test_only_onramp_session_updates_move_a_session(
    client: AsyncTestClient[Litestar], database: Database, event_type: str
) -> None:
    session = await a_session(database)
    event = onramp_event(session.stripe_session_id or "", "fulfillment_complete")
    event["type"] = event_type
    response = await deliver(client, event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    unchanged = await reload(database, session.id)
    assert (unchanged.status, unchanged.delivery_status) == ("initialized", "not_started")


@pytest.mark.parametrize(
    "event_type", ["crypto.onramp_session_updated", "crypto.onramp_session.updated"]
)
async def test_both_spellings_of_the_update_event_move_a_session(
    client: AsyncTestClient[Litestar], database: Database, event_type: str
) -> None:
    session = await a_session(database)
    event = onramp_event(session.stripe_session_id or "", "requires_payment", event_type=event_type)
    assert (await deliver(client, event)).json()["outcome"] == "applied"
    assert (await reload(database, session.id)).status == "requires_payment"


async def test_a_live_mode_event_does_not_move_a_test_mode_session(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    event = onramp_event(session.stripe_session_id or "", "fulfillment_complete")
    event["livemode"] = True
    event["data"]["object"]["livemode"] = True
    response = await deliver(client, event)
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored")
    assert (await reload(database, session.id)).status == "initialized"
    [logged] = await stored_events(database)
    assert (logged.outcome, logged.onramp_session_id) == ("ignored", session.id)


async def test_an_event_whose_metadata_names_another_session_moves_only_its_own(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    """Stripe's id finds session X; the metadata names session Y (still without a Stripe
    id). X moves, Y is untouched, the conflict is stored, and redelivery is a duplicate."""
    x = await a_session(database)
    y = await a_session(database)
    async with orm_session(database) as db, db.begin():
        stored = await db.get(OnrampSession, y.id)
        assert stored is not None
        stored.stripe_session_id = None  # its create call has not heard back from Stripe
    event = onramp_event(x.stripe_session_id or "", "requires_payment", onramp_session_id=y.id)
    response = await deliver(client, event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    assert (await reload(database, x.id)).status == "requires_payment"
    untouched = await reload(database, y.id)
    assert (untouched.status, untouched.stripe_session_id) == ("initialized", None)
    [logged] = await stored_events(database)
    assert logged.onramp_session_id == x.id
    assert y.id in (logged.error or "")
    assert (await deliver(client, event)).json()["outcome"] == "duplicate"
