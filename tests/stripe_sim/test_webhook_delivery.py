"""The stand-in delivers signed events like Stripe: at least once, retried, unordered."""

from __future__ import annotations

import json

from service.webhooks.signatures import verify_signature
from tests.stripe_sim.conftest import Receiver
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET


def a_session(stripe: RunningStripe) -> str:
    response = stripe.simulator._new_session(
        {"source_amount": "100.00", "destination_network": "mezo", "destination_currency": "musd"}
    )
    return str(response["id"])


def test_status_changes_are_delivered_signed_and_verifiable(
    stripe: RunningStripe, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    stripe.send_webhooks_to(url, WEBHOOK_SECRET)
    session_id = a_session(stripe)
    stripe.advance(session_id, "requires_payment")
    stripe.advance(session_id, "requires_payment")  # no change, no event
    stripe.advance(session_id, "fulfillment_complete", transactionId="0x" + "1" * 64)
    stripe.wait_for_webhooks()
    assert len(endpoint.received) == 2
    statuses = set()
    for body, header in endpoint.received:
        verify_signature(body, header, [WEBHOOK_SECRET], 300)
        event = json.loads(body)
        assert event["object"] == "event"
        assert event["type"] == "crypto.onramp_session_updated"
        assert event["id"].startswith("evt_")
        assert event["data"]["object"]["id"] == session_id
        statuses.add(event["data"]["object"]["status"])
    assert statuses == {"requires_payment", "fulfillment_complete"}


def test_refused_deliveries_are_retried_with_back_off(
    stripe: RunningStripe, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    endpoint.failures = 2
    stripe.send_webhooks_to(url, WEBHOOK_SECRET, backoffMs=20)
    stripe.advance(a_session(stripe), "requires_payment")
    [delivery] = stripe.wait_for_webhooks()
    assert delivery["delivered"] is True
    assert delivery["attempts"] == 3
    assert len(endpoint.received) == 1


def test_deliveries_can_be_duplicated_held_and_reordered(
    stripe: RunningStripe, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    stripe.send_webhooks_to(url, WEBHOOK_SECRET, duplicate=2, hold=True)
    session_id = a_session(stripe)
    statuses = ("requires_payment", "fulfillment_processing", "fulfillment_complete")
    for status in statuses:
        stripe.advance(session_id, status)
    assert endpoint.received == []
    assert stripe.control("POST", "webhooks/flush", {"order": "reverse"})["sent"] == 3
    deliveries = stripe.wait_for_webhooks()
    assert len(deliveries) == 6
    assert all(d["delivered"] for d in deliveries)
    bodies = {json.loads(body)["id"]: json.loads(body) for body, _ in endpoint.received}
    sent_order = [d["eventId"] for d in deliveries][::2]
    assert [bodies[e]["data"]["object"]["status"] for e in sent_order] == list(reversed(statuses))
