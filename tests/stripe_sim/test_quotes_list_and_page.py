"""The stand-in's quotes, list and hosted payment page, as stripe-python and a browser
form see them."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe as stripe_sdk

from service.stripe_sim.prices import destination_for, source_for
from tests.stripe_sim.test_simulator import PARAMS
from tests.support.stripe import RunningStripe


async def quote(sdk: stripe_sdk.StripeClient, path: str, **params: Any) -> dict[str, Any]:
    response = await sdk.raw_request_async("get", path, **params)
    found: dict[str, Any] = response.data
    return found


@pytest.mark.parametrize("path", ["/v1/crypto/onramp/quotes", "/v1/crypto/onramp_quotes"])
async def test_a_quote_has_stripes_shape_on_both_documented_paths(
    sdk: stripe_sdk.StripeClient, path: str
) -> None:
    found = await quote(
        sdk,
        path,
        source_amount="100.00",
        destination_currencies=["musd"],
        destination_networks=["mezo", "base"],
    )
    assert found["object"] == "crypto.onramp.quotes"
    assert found["source_amount"] == "100.00"
    assert isinstance(found["rate_fetched_at"], float)
    assert set(found["destination_network_quotes"]) == {"mezo", "base_network"}
    assert found["destination_network_quotes"]["base_network"] == []  # no MUSD on Base
    (offer,) = found["destination_network_quotes"]["mezo"]
    assert offer["destination_amount"] == "98.49"  # 100 less 1.50 and 0.01 in fees
    assert offer["fees"] == {"network_fee_monetary": "0.01", "transaction_fee_monetary": "1.50"}


async def test_a_quote_by_destination_amount_buys_at_least_that(
    sdk: stripe_sdk.StripeClient,
) -> None:
    found = await quote(
        sdk,
        "/v1/crypto/onramp/quotes",
        destination_amount="50",
        destination_currencies=["musd"],
        destination_networks=["mezo"],
    )
    (offer,) = found["destination_network_quotes"]["mezo"]
    paid = Decimal(offer["source_total_amount"])
    assert Decimal(offer["destination_amount"]) >= 50
    assert destination_for(paid - Decimal("0.01"), "musd") < 50  # and a cent less would not


ONE_DESTINATION = {"destination_currencies": ["musd"], "destination_networks": ["mezo"]}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"source_amount": "10.00", "destination_amount": "5"},
        {"destination_amount": "5", "destination_networks": ["mezo", "base"]},
        {"source_amount": "10.00", "destination_networks": ["moon"]},
        {"destination_amount": "abc", **ONE_DESTINATION},
        {"destination_amount": "1e30", **ONE_DESTINATION},
    ],
)
async def test_a_bad_quote_request_gets_stripes_error(
    sdk: stripe_sdk.StripeClient, params: dict[str, Any]
) -> None:
    with pytest.raises(stripe_sdk.InvalidRequestError):
        await quote(sdk, "/v1/crypto/onramp/quotes", **params)


def test_source_for_is_the_least_amount_that_buys_the_destination() -> None:
    for wanted in (Decimal("0.01"), Decimal("1"), Decimal("98.49"), Decimal("1234.567")):
        source = source_for(wanted, "musd")
        assert (
            destination_for(source, "musd")
            >= wanted
            > destination_for(source - Decimal("0.01"), "musd")
        )


async def test_a_session_bought_by_destination_amount_charges_what_it_costs(
    sdk: stripe_sdk.StripeClient,
) -> None:
    params = {k: v for k, v in PARAMS.items() if k != "source_amount"} | {
        "destination_amount": "50"
    }
    created = await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **params)
    details = created.data["transaction_details"]
    assert details["destination_amount"] == "50"
    assert details["source_amount"] == f"{source_for(Decimal(50), 'musd'):.2f}"


async def test_the_list_filters_and_pages_as_stripe_does(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    ids = []
    for _ in range(5):
        created = await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **PARAMS)
        ids.append(created.data["id"])
    now = int(time.time())
    for index, session_id in enumerate(ids):
        stripe.simulator.sessions[session_id]["created"] = now - 100 * (5 - index)
    stripe.simulator.advance(ids[4], "rejected")

    async def listed(**params: Any) -> dict[str, Any]:
        found: dict[str, Any] = (
            await sdk.raw_request_async("get", "/v1/crypto/onramp_sessions", **params)
        ).data
        return found

    newest = await listed(limit=2)
    assert [s["id"] for s in newest["data"]] == [ids[4], ids[3]]
    assert newest["has_more"]
    following = await listed(limit=2, starting_after=ids[3])
    assert [s["id"] for s in following["data"]] == [ids[2], ids[1]]
    back = await listed(limit=2, ending_before=ids[1])
    assert [s["id"] for s in back["data"]] == [ids[3], ids[2]]
    assert back["has_more"]
    ranged = await listed(created={"gte": now - 400, "lt": now - 100})
    assert [s["id"] for s in ranged["data"]] == [ids[3], ids[2], ids[1]]
    assert [s["id"] for s in (await listed(status="rejected"))["data"]] == [ids[4]]
    with pytest.raises(stripe_sdk.InvalidRequestError):
        await listed(limit=101)


async def test_the_hosted_page_takes_a_test_card_and_moves_the_session(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    created = (await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **PARAMS)).data
    page = created["redirect_url"]
    assert page.startswith(stripe.url + "/pay/")
    async with httpx.AsyncClient(timeout=5) as browser:
        shown = await browser.get(page)
        assert shown.status_code == 200
        assert "text/html" in shown.headers["content-type"]
        assert "100.00 USD" in shown.text
        assert PARAMS["wallet_addresses"]["mezo"] in shown.text

        wrong = await browser.post(page, data={"card": "1111 1111 1111 1111"})
        assert "Use a test card" in wrong.text
        assert stripe.simulator.sessions[created["id"]]["status"] == "initialized"

        paid = await browser.post(page, data={"card": "4242 4242 4242 4242"})
        assert "Payment received" in paid.text
    session = stripe.simulator.sessions[created["id"]]
    assert session["status"] == "fulfillment_complete"
    assert re.fullmatch(r"0x[0-9a-f]{64}", session["transaction_details"]["transaction_id"])
    async with httpx.AsyncClient(timeout=5) as browser:
        again = await browser.post(page, data={"card": "4242424242424242"})
    assert "no longer waiting" in again.text


async def test_a_declined_card_rejects_the_session(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    created = (await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **PARAMS)).data
    async with httpx.AsyncClient(timeout=5) as browser:
        refused = await browser.post(created["redirect_url"], data={"card": "4000000000000002"})
        missing = await browser.get(created["redirect_url"] + "x")
    assert "declined" in refused.text
    assert stripe.simulator.sessions[created["id"]]["status"] == "rejected"
    assert missing.status_code == 404
