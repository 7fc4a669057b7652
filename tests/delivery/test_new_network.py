"""A new network is an entry in the token registry and its `<NETWORK>_RPC_URLS`, with no
code (docs/architecture.md's recipe): an entry added to a copy of contracts/tokens.json
is on sale in `/api/v1/config`, bought through the real route and the Stripe stand-in,
and its transfer proved by the worker on that network's own chain."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service import registry
from service.database import Database
from service.resources import resource_dir
from service.settings import ChainSettings
from tests.delivery.conftest import USDC_UNIT, mine, run_rounds, send
from tests.delivery.test_networks import fulfil
from tests.onramp.conftest import Caller
from tests.support.anvil import Anvil, start_anvil
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET

CHAIN_ID = 10
TOKEN = "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"
CONFIRMATIONS = 2
ENTRY = {
    "network": "optimism",
    "currency": "usdc",
    "environment": "mainnet",
    "chainId": CHAIN_ID,
    "address": TOKEN,
    "decimals": 6,
    "confirmations": CONFIRMATIONS,
    "finalityDepth": CONFIRMATIONS,
    "stripeWalletKey": "optimism",
    "rpcUrls": ["https://mainnet.optimism.io"],
    "verified": False,
}
PURCHASE = {"destinationNetwork": "optimism", "destinationCurrency": "usdc"}


@pytest.fixture
def registry_with_a_new_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    copy = json.loads((resource_dir("contracts") / "tokens.json").read_text())
    assert "optimism" not in {entry["network"] for entry in copy["tokens"]}
    copy["tokens"].append(ENTRY)
    (tmp_path / "tokens.json").write_text(json.dumps(copy))
    monkeypatch.setattr(registry, "resource_dir", lambda _: tmp_path)
    registry.tokens.cache_clear()
    yield
    monkeypatch.undo()
    registry.tokens.cache_clear()


@pytest.fixture(scope="module")
def optimism() -> Iterator[Anvil]:
    node = start_anvil(chain_id=CHAIN_ID)
    try:
        node.deploy_at("TestUSDC", TOKEN)
        mint = node.contract("TestUSDC", TOKEN).functions.mint(node.funder, 10**9 * USDC_UNIT)
        node.w3.eth.wait_for_transaction_receipt(mint.transact({"from": node.funder}))
        yield node
    finally:
        node.stop()


@pytest.mark.usefixtures("registry_with_a_new_network")
async def test_a_registry_entry_is_sold_bought_and_verified_with_no_code(
    make_onramp_app: Callable[..., Litestar],
    stripe: RunningStripe,
    anvil: Anvil,
    musd: str,
    optimism: Anvil,
    database: Database,
) -> None:
    env = {
        "MEZO_RPC_URLS": anvil.url,
        "MUSD_TOKEN_ADDRESS": musd,
        "OPTIMISM_RPC_URLS": optimism.url,
    }
    app = make_onramp_app(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, **env)
    async with AsyncTestClient(app=app) as client:
        config = (await client.get("/api/v1/config")).json()
        [sold] = [d for d in config["destinations"] if d["network"] == "optimism"]
        assert (sold["currency"], sold["chainId"], sold["tokenAddress"]) == ("usdc", 10, TOKEN)

        caller = Caller(client, str(Account.create().address))
        answer = await caller.create(
            {"walletAddress": caller.wallet, "sourceAmount": "100.00", **PURCHASE}
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()
        at_stripe = stripe.simulator.sessions[created["stripeSessionId"]]["transaction_details"]
        assert at_stripe["destination_network"] == "optimism"
        assert at_stripe["wallet_addresses"]["optimism"] == caller.wallet

        tx = send(optimism, TOKEN, caller.wallet, 98_49 * USDC_UNIT // 100, "TestUSDC")
        mine(optimism, CONFIRMATIONS)
        await fulfil(client, created["stripeSessionId"], tx, "98.49")
        await run_rounds(database, ChainSettings.model_validate(env))
        view = (await caller.get(f"/api/v1/onramp/sessions/{created['id']}")).json()
    assert view["delivery"]["status"] == "confirmed", view
    assert view["transactionHash"] == tx
