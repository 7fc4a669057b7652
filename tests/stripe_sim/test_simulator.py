"""The stand-in as stripe-python sees it: Stripe's objects, errors and idempotency."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import stripe as stripe_sdk

from service.stripe_sim.params import StripeError
from service.stripe_sim.sessions import advance, new_session
from tests.support.anvil import free_port
from tests.support.processes import ONRAMP, bare_env
from tests.support.stripe import RunningStripe

PARAMS: dict[str, Any] = {
    "wallet_addresses": {"mezo": "0x52908400098527886E0F7030069857D2E4169EE7"},
    "lock_wallet_address": True,
    "destination_currency": "musd",
    "destination_network": "mezo",
    "destination_currencies": ["musd"],
    "destination_networks": ["mezo"],
    "source_currency": "usd",
    "source_amount": "100.00",
    "metadata": {"onramp_session_id": "ors_test"},
}


async def create(sdk: stripe_sdk.StripeClient, key: str | None = None, **changes: Any) -> Any:
    params = {**PARAMS, **changes}
    if key is not None:
        params["idempotency_key"] = key
    response = await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **params)
    return sdk.deserialize(response, api_mode="V1")


async def test_created_sessions_have_stripes_shape(sdk: stripe_sdk.StripeClient) -> None:
    session = await create(sdk)
    assert session["object"] == "crypto.onramp_session"
    assert session["id"].startswith("cos_")
    assert session["client_secret"].startswith(session["id"] + "_secret_")
    assert session["status"] == "initialized"
    details = session["transaction_details"]
    assert details["wallet_address"] == PARAMS["wallet_addresses"]["mezo"]
    assert details["lock_wallet_address"] is True
    assert details["destination_networks"] == ["mezo"]
    fetched = await sdk.raw_request_async("get", f"/v1/crypto/onramp_sessions/{session['id']}")
    assert sdk.deserialize(fetched, api_mode="V1").to_dict() == session.to_dict()


async def test_idempotency_keys_replay_or_refuse(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    first = await create(sdk, key="k1")
    again = await create(sdk, key="k1")
    assert again["id"] == first["id"]
    with pytest.raises(stripe_sdk.IdempotencyError):
        await create(sdk, key="k1", source_amount="5.00")
    assert stripe.stats() == {"createRequests": 3, "sessionsCreated": 1, "quoteRequests": 0}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"source_amount": "1.001"}, "crypto_onramp_invalid_source_amount"),
        ({"source_amount": "99999"}, "crypto_onramp_invalid_source_amount"),
        ({"destination_network": "tron"}, "crypto_onramp_invalid_source_destination_pair"),
        ({"destination_currency": "eth"}, "crypto_onramp_invalid_source_destination_pair"),
        ({"customer_ip_address": "203.0.113.1"}, "crypto_onramp_unsupportable_customer"),
        ({"bogus": "1"}, "parameter_unknown"),
    ],
)
async def test_refusals_use_stripes_error_envelope(
    sdk: stripe_sdk.StripeClient, changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(stripe_sdk.InvalidRequestError) as raised:
        await create(sdk, **changes)
    assert raised.value.code == code
    assert raised.value.http_status == 400


async def test_unknown_sessions_and_keys(stripe: RunningStripe) -> None:
    sdk = stripe_sdk.StripeClient("sk_test_other", base_addresses={"api": stripe.url})
    with pytest.raises(stripe_sdk.AuthenticationError):
        await sdk.raw_request_async("get", "/v1/crypto/onramp_sessions/cos_x")


async def test_missing_sessions_are_resource_missing(sdk: stripe_sdk.StripeClient) -> None:
    with pytest.raises(stripe_sdk.InvalidRequestError) as raised:
        await sdk.raw_request_async("get", "/v1/crypto/onramp_sessions/cos_missing")
    assert raised.value.code == "resource_missing"
    assert raised.value.http_status == 404


async def test_injected_faults(sdk: stripe_sdk.StripeClient, stripe: RunningStripe) -> None:
    stripe.faults(fail=1, failStatus=503)
    with pytest.raises(stripe_sdk.APIError):
        await create(sdk)
    stripe.faults(dropBefore=1)
    with pytest.raises(stripe_sdk.APIConnectionError):
        await create(sdk, key="dropped-before")
    assert stripe.stats()["sessionsCreated"] == 0
    stripe.faults(dropAfter=1)
    with pytest.raises(stripe_sdk.APIConnectionError):
        await create(sdk, key="dropped-after")
    assert stripe.stats()["sessionsCreated"] == 1
    replayed = await create(sdk, key="dropped-after")
    assert replayed["id"] in stripe.simulator.sessions
    assert stripe.stats()["sessionsCreated"] == 1


async def test_a_share_of_create_calls_fails_or_drops(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    stripe.faults(failRate=1)
    with pytest.raises(stripe_sdk.APIError):
        await create(sdk, key="always-failing")
    stripe.faults(dropRate=1)
    for attempt in range(4):
        with pytest.raises(stripe_sdk.APIConnectionError):
            await create(sdk, key=f"always-dropped-{attempt}")
    stripe.faults(failRate=0.5)
    outcomes = []
    for attempt in range(40):
        try:
            await create(sdk, key=f"half-{attempt}")
            outcomes.append(True)
        except stripe_sdk.APIError:
            outcomes.append(False)
    assert 5 < outcomes.count(True) < 35


async def test_listing_newest_first(sdk: stripe_sdk.StripeClient) -> None:
    ids = [(await create(sdk))["id"] for _ in range(3)]
    listed = await sdk.raw_request_async("get", "/v1/crypto/onramp_sessions", limit=2)
    page = sdk.deserialize(listed, api_mode="V1")
    assert page["object"] == "list"
    assert len(page["data"]) == 2
    assert page["has_more"] is True
    assert {s["id"] for s in page["data"]} <= set(ids)


def test_statuses_advance_with_fulfilment_details() -> None:
    session = new_session(
        {"source_amount": "100.00", "destination_network": "mezo", "destination_currency": "musd"}
    )
    previous = advance(session, "fulfillment_complete", transaction_id="0x" + "1" * 64)
    assert previous["status"] == "initialized"
    details = session["transaction_details"]
    assert details["transaction_id"] == "0x" + "1" * 64
    assert details["destination_amount"] == "98.49"
    assert details["fees"] == {"network_fee_amount": "0.01", "transaction_fee_amount": "1.50"}
    with pytest.raises(StripeError):
        advance(session, "paid")


def test_onramp_stripe_sim_serves_the_stand_in(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [ONRAMP, "stripe-sim", "--port", str(port), "--secret-key", "sk_test_cli"],
        env=bare_env(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sdk = stripe_sdk.StripeClient(
            "sk_test_cli",
            base_addresses={"api": f"http://127.0.0.1:{port}"},
            http_client=stripe_sdk.HTTPXClient(timeout=5, allow_sync_methods=True),
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                created = sdk.raw_request("post", "/v1/crypto/onramp_sessions", **PARAMS)
                break
            except stripe_sdk.APIConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert sdk.deserialize(created, api_mode="V1")["id"].startswith("cos_")
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_wallet_addresses_use_stripes_own_network_keys(sdk: stripe_sdk.StripeClient) -> None:
    wallet = PARAMS["wallet_addresses"]["mezo"]
    base: dict[str, Any] = {
        "destination_network": "base",
        "destination_currency": "usdc",
        "destination_networks": ["base"],
        "destination_currencies": ["usdc"],
    }
    session = await create(sdk, wallet_addresses={"base_network": wallet}, **base)
    details = session["transaction_details"]
    assert details["wallet_address"] == wallet
    assert details["wallet_addresses"]["base_network"] == wallet
    assert details["wallet_addresses"]["ethereum"] is None  # every key, null where unset
    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        await create(sdk, wallet_addresses={"base": wallet}, **base)
    assert refused.value.http_status == 400
    assert "wallet_addresses" in str(refused.value.user_message)
