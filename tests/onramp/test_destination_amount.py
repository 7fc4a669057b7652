"""Buying an exact amount of tokens: `destinationAmount` instead of `sourceAmount`, through
the real app, database and Stripe stand-in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.onramp.conftest import Caller
from tests.support.stripe import RunningStripe


async def test_a_session_bought_by_its_destination_amount(
    caller: Caller, stripe: RunningStripe
) -> None:
    response = await caller.create({"walletAddress": caller.wallet, "destinationAmount": "50"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["destinationAmount"] == "50"
    assert body["sourceAmount"] == "50.77"  # Stripe's price, fees included
    sent = stripe.simulator.create_params[body["stripeSessionId"]]
    assert sent["destination_amount"] == "50"
    assert "source_amount" not in sent
    read = await caller.get(f"/api/v1/onramp/sessions/{body['id']}")
    assert (read.json()["sourceAmount"], read.json()["destinationAmount"]) == ("50.77", "50")


async def test_a_retry_with_the_same_key_buys_once_and_another_amount_is_refused(
    caller: Caller, stripe: RunningStripe
) -> None:
    body = {"walletAddress": caller.wallet, "destinationAmount": "12.5"}
    first = await caller.create(body, key="by-destination")
    again = await caller.create(body, key="by-destination")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = {"walletAddress": caller.wallet, "sourceAmount": "12.50"}
    reused = await caller.create(other, key="by-destination")
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert stripe.stats()["sessionsCreated"] == 1


@pytest.mark.parametrize(
    "amounts",
    [
        {},
        {"sourceAmount": "10.00", "destinationAmount": "10"},
        {"destinationAmount": "1." + "1" * 19},  # MUSD has 18 decimals
        {"destinationAmount": "0"},
        {"destinationAmount": "-1"},
        {"destinationAmount": 10},
    ],
)
async def test_a_bad_amount_is_a_400_and_reaches_nothing(
    caller: Caller, stripe: RunningStripe, amounts: dict[str, Any]
) -> None:
    response = await caller.create({"walletAddress": caller.wallet, **amounts})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_amount"
    assert stripe.stats()["createRequests"] == 0
    listed = await caller.get("/api/v1/onramp/sessions")
    assert listed.json()["items"] == []


@pytest.mark.parametrize("amount", ["20000", "0.5"])
async def test_a_destination_amount_that_costs_too_much_or_too_little_is_refused(
    caller: Caller, stripe: RunningStripe, amount: str
) -> None:
    """The same limits as a source amount (MIN/MAX_SOURCE_AMOUNT), at Stripe's price."""
    response = await caller.create({"walletAddress": caller.wallet, "destinationAmount": amount})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "amount_out_of_range"
    assert response.json()["errors"][0]["field"] == "destinationAmount"
    assert stripe.stats()["createRequests"] == 0
