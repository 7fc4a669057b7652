"""A purchase from sign-in to a delivery confirmed on anvil reaches the merchant's
receiver, and every delivery verifies with the Standard Webhooks reference libraries,
Python's and npm's, and with no other endpoint's secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.app import create_app
from service.settings import Settings
from tests.delivery.conftest import send
from tests.delivery.test_worker import UNIT
from tests.merchant_webhooks.conftest import KEYS, register
from tests.onramp.conftest import stripe_env
from tests.support.anvil import Anvil
from tests.support.node import node_json
from tests.support.receivers import receiving
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

__all__ = ["stripe_env"]

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def test_a_confirmed_purchase_reaches_the_merchant_verifiably(
    settings_from_env: Callable[..., Settings],
    stripe_env: dict[str, str],
    database_url: str,
    anvil: Anvil,
    stripe: RunningStripe,
) -> None:
    musd = anvil.deploy_token(100 * UNIT)
    settings = settings_from_env(
        **{
            **stripe_env,
            **KEYS,
            "DATABASE_URL": database_url,
            "MEZO_RPC_URLS": anvil.url,
            "MUSD_TOKEN_ADDRESS": musd,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DELIVERY_WORKER": "true",
        }
    )
    account = Account.create()
    with receiving() as merchant, receiving() as other:
        async with AsyncTestClient(app=create_app(settings)) as client:
            endpoint = await register(client, merchant.url)
            elsewhere = await register(client, other.url, events=["delivery.failed"])

            issued = (
                await client.post("/api/v1/auth/nonce", json={"walletAddress": account.address})
            ).json()
            signed = account.sign_message(encode_defunct(text=issued["message"]))
            verified = await client.post(
                "/api/v1/auth/verify",
                json={
                    "message": issued["message"],
                    "signature": "0x" + bytes(signed.signature).hex(),
                },
            )
            bearer = {"Authorization": f"Bearer {verified.json()['token']}"}
            created = await client.post(
                "/api/v1/onramp/sessions",
                json={"walletAddress": account.address, "sourceAmount": "100.00"},
                headers=bearer,
            )
            assert created.status_code == 201, created.text
            session = created.json()

            tx = send(anvil, musd, account.address, 98_49 * UNIT // 100)
            body = encode(
                onramp_event(
                    session["stripeSessionId"],
                    "fulfillment_complete",
                    transaction_id=tx,
                    destination_amount="98.49",
                )
            )
            stripe_said = await client.post(
                "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
            )
            assert stripe_said.json()["outcome"] == "applied"
            deliveries = await asyncio.to_thread(merchant.wait_for, 2)
            owner_view = (
                await client.get(f"/api/v1/onramp/sessions/{session['id']}", headers=bearer)
            ).json()

    events = [json.loads(d.body) for d in deliveries]
    assert [e["type"] for e in events] == ["onramp_session.updated", "delivery.confirmed"]
    assert events[0]["data"]["status"] == "fulfillment_complete"
    assert events[1]["data"]["delivery"]["status"] == "confirmed"
    assert events[1]["data"]["version"] > events[0]["data"]["version"]
    assert events[1]["timestamp"].endswith("Z")
    # The owner's GET, without the client secret, with the version.
    expected = {k: v for k, v in owner_view.items() if k != "clientSecret"}
    assert {k: v for k, v in events[1]["data"].items() if k != "version"} == expected
    assert other.received == []  # it takes delivery.failed only

    for delivery in deliveries:
        assert Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(elsewhere["secret"]).verify(delivery.body, delivery.headers)
    sent = [{"headers": d.headers, "body": d.body} for d in deliveries]
    by_npm = node_json("standard_webhooks_verify.mjs", secret=endpoint["secret"], deliveries=sent)
    assert by_npm == {"verified": [True, True]}
    refused = node_json("standard_webhooks_verify.mjs", secret=elsewhere["secret"], deliveries=sent)
    assert refused == {"verified": [False, False]}
