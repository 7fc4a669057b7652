"""Forged, stale and replayed Stripe deliveries against a running service.

tests/webhooks/ checks the signature rules one by one (test_signatures.py) and that
missing or wrong signatures store nothing (test_receive.py). Here an attacker holds
what they could really hold: a delivery captured off the wire, or the knowledge of how
Stripe signs. Whatever they send must be refused, store nothing and move no session.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.onramp.conftest import new_wallet
from tests.security.conftest import row_counts, signed_in
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

PATH = "/api/v1/webhooks/stripe"
TOLERANCE = 300  # STRIPE_WEBHOOK_TOLERANCE_SECONDS' default, which the server runs with


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


@pytest.fixture
def session(http: httpx.Client) -> dict[str, Any]:
    """A fresh session, created through the API at the Stripe stand-in."""
    wallet = new_wallet()
    response = http.post(
        "/api/v1/onramp/sessions",
        json={"walletAddress": wallet, "sourceAmount": "100.00"},
        headers=signed_in(wallet),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    created["owner"] = signed_in(wallet)
    return created


def deliver(http: httpx.Client, body: bytes, signature: str) -> httpx.Response:
    return http.post(PATH, content=body, headers={"Stripe-Signature": signature})


def status_of(http: httpx.Client, session: dict[str, Any]) -> str:
    read = http.get(f"/api/v1/onramp/sessions/{session['id']}", headers=session["owner"])
    status: str = read.json()["status"]
    return status


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "webhook_signature_invalid"


def fulfilment(session: dict[str, Any]) -> bytes:
    """What an attacker would most like Stripe to have said: paid, with their transaction."""
    return encode(
        onramp_event(
            session["stripeSessionId"],
            "fulfillment_complete",
            transaction_id="0x" + "66" * 32,
            destination_amount="99.00",
        )
    )


def forgeries(body: bytes) -> dict[str, str]:
    """Signatures an attacker can make without the secret, each for `body`."""
    now = int(time.time())
    return {
        "stale": sign(body, timestamp=now - TOLERANCE - 60),
        "from the future": sign(body, timestamp=now + TOLERANCE + 60),
        "another secret": sign(body, secret="whsec_attacker_" + "b" * 24),
        "old signature, fresh timestamp": sign(body, timestamp=now - TOLERANCE - 60).replace(
            f"t={now - TOLERANCE - 60}", f"t={now}"
        ),
        "HMAC of the body alone": f"t={now},v1="
        + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "v0 scheme only": sign(body).replace("v1=", "v0="),
        "unsigned": "",
    }


@pytest.mark.parametrize("kind", list(forgeries(b"")))
def test_forged_and_stale_deliveries_are_refused_and_change_nothing(
    http: httpx.Client, session: dict[str, Any], migrated: dict[str, str], kind: str
) -> None:
    body = fulfilment(session)
    before = row_counts(migrated["postgresql"])
    assert_refused(deliver(http, body, forgeries(body)[kind]))
    assert row_counts(migrated["postgresql"]) == before
    assert status_of(http, session) == "initialized"


def test_a_captured_delivery_replays_only_as_itself(
    http: httpx.Client, session: dict[str, Any], migrated: dict[str, str]
) -> None:
    captured_body = encode(onramp_event(session["stripeSessionId"], "requires_payment"))
    captured_signature = sign(captured_body)
    assert deliver(http, captured_body, captured_signature).json()["outcome"] == "applied"
    before = row_counts(migrated["postgresql"])

    # Sent again unchanged, it is the same event: acknowledged, and nothing happens.
    assert deliver(http, captured_body, captured_signature).json()["outcome"] == "duplicate"
    # Under its captured signature, an edited body (another status, another event id)
    # or the same body later than the tolerance is refused.
    tampered = captured_body.replace(b'"requires_payment"', b'"fulfillment_complete"')
    assert tampered != captured_body
    assert_refused(deliver(http, tampered, captured_signature))
    assert_refused(deliver(http, fulfilment(session), captured_signature))
    late = sign(captured_body, timestamp=int(time.time()) - TOLERANCE - 1)
    assert_refused(deliver(http, captured_body, late))

    assert row_counts(migrated["postgresql"]) == before
    assert status_of(http, session) == "requires_payment"
