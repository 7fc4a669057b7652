"""Creating, reading and listing sessions through the real app, Stripe client and stand-in."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.logs import configure_logging
from tests.onramp.conftest import Caller, new_wallet
from tests.support.stripe import RunningStripe


async def test_a_session_is_created_at_stripe_locked_to_the_wallet(
    caller: Caller, stripe: RunningStripe
) -> None:
    response = await caller.create(
        {"walletAddress": caller.wallet.lower(), "sourceAmount": "250.5"},
        forwarded_for="198.51.100.7",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("ors_")
    assert body["walletAddress"] == caller.wallet
    assert body["sourceAmount"] == "250.50"
    assert (body["sourceCurrency"], body["destinationCurrency"], body["destinationNetwork"]) == (
        "usd",
        "musd",
        "mezo",
    )
    assert body["status"] == "initialized"
    assert body["destinationAmount"] is None
    assert body["transactionHash"] is None
    assert body["delivery"] == {
        "status": "not_started",
        "confirmations": 0,
        "blockNumber": None,
        "deliveredAmount": None,
        "checkedAt": None,
        "detail": None,
    }
    assert body["createdAt"].endswith("Z")
    assert (body["fees"], body["livemode"]) == (None, False)

    at_stripe = stripe.simulator.sessions[body["stripeSessionId"]]
    assert body["clientSecret"] == at_stripe["client_secret"]
    assert body["redirectUrl"] == at_stripe["redirect_url"]  # the hosted page, for its owner
    assert body["clientSecret"].startswith(f"{body['stripeSessionId']}_secret_")
    details = at_stripe["transaction_details"]
    assert details["wallet_addresses"]["mezo"] == caller.wallet
    assert {k for k, v in details["wallet_addresses"].items() if v} == {"mezo"}
    assert details["lock_wallet_address"] is True
    assert details["destination_networks"] == ["mezo"]
    assert details["destination_currencies"] == ["musd"]
    assert details["source_amount"] == "250.50"
    assert at_stripe["metadata"] == {"onramp_session_id": body["id"]}
    sent = stripe.simulator.create_params[body["stripeSessionId"]]
    assert sent["customer_ip_address"] == "198.51.100.7"
    assert sent["destination_currency"] == "musd"
    assert sent["destination_network"] == "mezo"


async def test_the_owner_reads_and_lists_their_sessions(caller: Caller) -> None:
    created = (await caller.create()).json()
    read = await caller.get(f"/api/v1/onramp/sessions/{created['id']}")
    assert read.status_code == 200
    assert read.json() == created
    listed = await caller.get("/api/v1/onramp/sessions")
    assert listed.json() == {"items": [created], "nextCursor": None}
    # JSON's false, not 0, from either database (0 == False would pass the equalities).
    assert read.json()["livemode"] is listed.json()["items"][0]["livemode"] is False


async def test_another_wallets_session_does_not_exist_for_you(
    caller: Caller, client: AsyncTestClient[Litestar]
) -> None:
    created = (await caller.create()).json()
    stranger = Caller(client, new_wallet())
    response = await stranger.get(f"/api/v1/onramp/sessions/{created['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (await stranger.get("/api/v1/onramp/sessions")).json()["items"] == []
    missing = await caller.get("/api/v1/onramp/sessions/ors_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status_code == 404


async def test_a_token_for_one_wallet_cannot_create_for_another(
    caller: Caller, stripe: RunningStripe
) -> None:
    response = await caller.create({"walletAddress": new_wallet(), "sourceAmount": "100.00"})
    assert response.status_code == 403
    assert response.json()["code"] == "wallet_mismatch"
    assert stripe.stats()["createRequests"] == 0


async def test_creating_needs_a_wallet_token(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        "/api/v1/onramp/sessions", json={"walletAddress": new_wallet(), "sourceAmount": "100.00"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"walletAddress": "0x123"}, "invalid_wallet_address"),
        ({"walletAddress": "0x52908400098527886e0F7030069857D2E4169EE7"}, "invalid_wallet_address"),
        ({"sourceAmount": "abc"}, "invalid_amount"),
        ({"sourceAmount": "10.001"}, "invalid_amount"),
        ({"sourceAmount": "-5"}, "invalid_amount"),
        ({"sourceAmount": "0"}, "invalid_amount"),
        ({"sourceAmount": "1e3"}, "invalid_amount"),
        ({"sourceAmount": 100}, "invalid_amount"),
        ({"sourceAmount": 99.5}, "invalid_amount"),
        ({"sourceAmount": " 100"}, "invalid_amount"),
        ({"sourceAmount": "0.99"}, "amount_out_of_range"),
        ({"sourceAmount": "10000.01"}, "amount_out_of_range"),
        ({"sourceCurrency": "jpy"}, "unsupported_currency"),
        ({"sourceCurrency": ""}, "unsupported_currency"),
        ({"destinationNetwork": ""}, "unsupported_destination"),
        ({"destinationCurrency": ""}, "unsupported_destination"),
        ({"destinationNetwork": "tron"}, "unsupported_destination"),
        ({"destinationCurrency": "usdc"}, "unsupported_destination"),
        ({"destinationCurrency": "usdc", "destinationNetwork": "base"}, "unsupported_destination"),
        (
            {"destinationCurrency": "usdc", "destinationNetwork": "ethereum"},
            "unsupported_destination",
        ),
        ({"promoCode": "FREE"}, "invalid_request"),
        ({"sourceAmount": None}, "invalid_amount"),
    ],
)
async def test_invalid_requests_are_400_and_never_reach_stripe(
    caller: Caller, stripe: RunningStripe, changes: dict[str, Any], code: str
) -> None:
    body = {"walletAddress": caller.wallet, "sourceAmount": "100.00", **changes}
    response = await caller.create(body, key="same-key")
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert stripe.stats()["createRequests"] == 0
    # Our own 400s are not stored against the key: the corrected request goes through.
    assert (await caller.create(key="same-key")).status_code == 201


async def test_a_missing_wallet_address_is_a_400(caller: Caller) -> None:
    response = await caller.create({"sourceAmount": "100.00"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"]


async def test_an_oversized_body_is_a_413(caller: Caller, stripe: RunningStripe) -> None:
    body = {"walletAddress": caller.wallet, "sourceAmount": "100.00", "pad": "x" * 17000}
    response = await caller.create(body)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_stripe_refusing_the_customer_is_a_422_that_leaves_nothing(
    caller: Caller,
) -> None:
    response = await caller.create(forwarded_for="203.0.113.9")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "stripe_error"
    assert body["stripeCode"] == "crypto_onramp_unsupportable_customer"
    assert (await caller.get("/api/v1/onramp/sessions")).json()["items"] == []


async def test_stripe_down_is_a_502_that_leaves_nothing(
    caller: Caller, stripe: RunningStripe
) -> None:
    stripe.faults(fail=1)
    response = await caller.create()
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_unavailable"
    assert (await caller.get("/api/v1/onramp/sessions")).json()["items"] == []


async def test_a_stripe_that_refuses_our_key_is_a_502(
    make_onramp_app: Callable[..., Litestar],
) -> None:
    async with AsyncTestClient(app=make_onramp_app(STRIPE_SECRET_KEY="sk_test_wrong")) as client:
        caller = Caller(client, new_wallet())
        response = await caller.create()
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_unavailable"


async def test_without_a_stripe_key_creation_is_503_and_changes_nothing(
    make_onramp_app: Callable[..., Litestar],
) -> None:
    async with AsyncTestClient(app=make_onramp_app(STRIPE_SECRET_KEY="")) as client:
        caller = Caller(client, new_wallet())
        response = await caller.create(key="k")
        assert response.status_code == 503
        assert response.json()["code"] == "stripe_not_configured"
        assert (await caller.get("/api/v1/onramp/sessions")).json()["items"] == []


async def test_lists_are_paged_newest_first_and_filtered(
    caller: Caller, stripe: RunningStripe
) -> None:
    created = [(await caller.create()).json() for _ in range(5)]
    ids = [session["id"] for session in created]
    stripe.advance(created[1]["stripeSessionId"], "rejected")
    await caller.client.post(
        f"/api/v1/admin/sessions/{ids[1]}/sync", headers={"X-API-Key": "ops-key-for-tests"}
    )
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await caller.get("/api/v1/onramp/sessions", **params)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    rejected = (await caller.get("/api/v1/onramp/sessions", status="rejected")).json()
    assert [item["id"] for item in rejected["items"]] == [ids[1]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "paid"}, "invalid_status"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "b3JzX3g"}, "invalid_cursor"),
        ({"limit": 0}, "invalid_request"),
        ({"limit": 101}, "invalid_request"),
        ({"limit": "many"}, "invalid_request"),
    ],
)
async def test_bad_list_parameters_are_400(
    caller: Caller, params: dict[str, Any], code: str
) -> None:
    response = await caller.get("/api/v1/onramp/sessions", **params)
    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_client_secrets_never_reach_the_logs(caller: Caller) -> None:
    output = io.StringIO()
    configure_logging("debug", "json", stream=output)
    created = (await caller.create(key="log-check")).json()
    await caller.create(key="log-check")
    await caller.get(f"/api/v1/onramp/sessions/{created['id']}")
    await caller.get("/api/v1/onramp/sessions")
    logs = output.getvalue()
    assert created["clientSecret"] not in logs
    assert created["clientSecret"].split("_secret_")[1] not in logs
    events = [json.loads(line)["event"] for line in logs.splitlines()]
    assert "session_created" in events
    assert events.count("request") == 4


async def test_session_creation_is_rate_limited_per_wallet(
    make_onramp_app: Callable[..., Litestar],
) -> None:
    async with AsyncTestClient(app=make_onramp_app(RATE_LIMIT_PER_MINUTE="2")) as client:
        caller = Caller(client, new_wallet())
        statuses = [
            (await caller.create(forwarded_for=f"10.9.0.{i}")).status_code for i in range(3)
        ]
    assert statuses == [201, 201, 429]


@pytest.mark.parametrize("session_id", ["ors_%00x", "%00", "x" * 300, "ors_" + "Z" * 26 + "%00"])
async def test_malformed_session_ids_are_404(caller: Caller, session_id: str) -> None:
    assert (await caller.get(f"/api/v1/onramp/sessions/{session_id}")).status_code == 404
    synced = await caller.client.post(
        f"/api/v1/admin/sessions/{session_id}/sync", headers={"X-API-Key": "ops-key-for-tests"}
    )
    assert synced.status_code == 404
