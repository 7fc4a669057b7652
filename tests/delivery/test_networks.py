"""Every network the service accepts, it can verify: Mezo and Base in one deployment,
each on its own chain, and finality watched where a confirmed block can still go away."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.database import Database
from service.settings import ChainSettings
from tests.delivery.conftest import (
    BASE_USDC,
    MUSD_UNIT,
    USDC_UNIT,
    check_row,
    credits_of,
    fulfilled_session,
    mine,
    run_rounds,
    send,
    session_row,
)
from tests.onramp.conftest import ADMIN_KEY, Caller
from tests.support.anvil import Anvil
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

BASE_PURCHASE = {"destinationNetwork": "base", "destinationCurrency": "usdc"}


def two_networks(anvil: Anvil, musd: str, base_chain: Anvil) -> dict[str, str]:
    return {"MEZO_RPC_URLS": anvil.url, "MUSD_TOKEN_ADDRESS": musd, "BASE_RPC_URLS": base_chain.url}


async def fulfil(
    client: AsyncTestClient[Litestar], stripe_session_id: str, tx: str, amount: str
) -> None:
    body = encode(
        onramp_event(
            stripe_session_id, "fulfillment_complete", transaction_id=tx, destination_amount=amount
        )
    )
    answer = await client.post(
        "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
    )
    assert answer.json()["outcome"] == "applied"


async def test_one_deployment_verifies_musd_on_mezo_and_usdc_on_base(
    make_onramp_app: Callable[..., Litestar],
    stripe: RunningStripe,
    anvil: Anvil,
    musd: str,
    base_chain: Anvil,
    database: Database,
) -> None:
    env = two_networks(anvil, musd, base_chain)
    app = make_onramp_app(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, **env)
    async with AsyncTestClient(app=app) as client:
        caller = Caller(client, str(Account.create().address))
        on_mezo = (await caller.create()).json()
        answer = await caller.create(
            {"walletAddress": caller.wallet, "sourceAmount": "100.00", **BASE_PURCHASE}
        )
        assert answer.status_code == 201, answer.text
        on_base = answer.json()
        at_stripe = stripe.simulator.sessions[on_base["stripeSessionId"]]["transaction_details"]
        assert at_stripe["wallet_addresses"]["base_network"] == caller.wallet
        assert (at_stripe["destination_network"], at_stripe["destination_currency"]) == (
            "base",
            "usdc",
        )

        musd_tx = send(anvil, musd, caller.wallet, 98_49 * MUSD_UNIT // 100)
        usdc_tx = send(
            base_chain, BASE_USDC.address, caller.wallet, 98_49 * USDC_UNIT // 100, "TestUSDC"
        )
        mine(base_chain, BASE_USDC.confirmations)
        await fulfil(client, on_mezo["stripeSessionId"], musd_tx, "98.49")
        await fulfil(client, on_base["stripeSessionId"], usdc_tx, "98.49")
        await run_rounds(database, ChainSettings.model_validate(env))

        views = [
            (await caller.get(f"/api/v1/onramp/sessions/{s['id']}")).json()
            for s in (on_mezo, on_base)
        ]
        ready = (await client.get("/api/v1/admin/ready", headers={"X-API-Key": ADMIN_KEY})).json()[
            "checks"
        ]["rpc"]
    for view, tx in zip(views, (musd_tx, usdc_tx), strict=True):
        assert view["delivery"]["status"] == "confirmed", view
        assert view["delivery"]["deliveredAmount"] == "98.49"
        assert view["transactionHash"] == tx
    [base_credit] = await credits_of(database, on_base["id"])
    assert (base_credit.chain_id, base_credit.transaction_hash) == (8453, usdc_tx)
    assert {node["network"] for node in ready["nodes"]} == {"mezo", "base"}


async def test_a_usdc_transfer_on_mezo_does_not_prove_a_base_session(
    anvil: Anvil, musd: str, base_chain: Anvil, database: Database
) -> None:
    """The transaction must be on the session's own chain, from the registry's token."""
    wallet = str(Account.create().address)
    on_mezo = send(anvil, musd, wallet, 5 * MUSD_UNIT)
    session = await fulfilled_session(
        database, "5", on_mezo, wallet, network="base", currency="usdc"
    )
    await run_rounds(database, ChainSettings.model_validate(two_networks(anvil, musd, base_chain)))
    checked = await session_row(database, session.id)
    assert checked.delivery_status == "pending"
    assert "not on the chain" in (checked.delivery_detail or "")


async def test_a_tolerance_finer_than_usdcs_decimals_still_confirms_usdc(
    anvil: Anvil, musd: str, base_chain: Anvil, database: Database
) -> None:
    wallet = str(Account.create().address)
    tx = send(base_chain, BASE_USDC.address, wallet, 2 * USDC_UNIT, "TestUSDC")
    mine(base_chain, BASE_USDC.confirmations)
    session = await fulfilled_session(database, "2", tx, wallet, network="base", currency="usdc")
    env = {**two_networks(anvil, musd, base_chain), "DELIVERY_AMOUNT_TOLERANCE": "0.0000001"}
    await run_rounds(database, ChainSettings.model_validate(env))
    assert (await session_row(database, session.id)).delivery_status == "confirmed"


@pytest.mark.parametrize(
    "purchase",
    [BASE_PURCHASE, {"destinationNetwork": "ethereum", "destinationCurrency": "usdc"}],
)
async def test_a_network_without_rpc_urls_is_refused_before_stripe(
    make_onramp_app: Callable[..., Litestar],
    stripe: RunningStripe,
    anvil: Anvil,
    musd: str,
    purchase: dict[str, Any],
) -> None:
    app = make_onramp_app(MEZO_RPC_URLS=anvil.url, MUSD_TOKEN_ADDRESS=musd)
    async with AsyncTestClient(app=app) as client:
        caller = Caller(client, str(Account.create().address))
        answer = await caller.create(
            {"walletAddress": caller.wallet, "sourceAmount": "100.00", **purchase}
        )
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["code"] == "unsupported_destination"
    assert "musd on mezo" in problem["detail"]
    assert stripe.stats()["createRequests"] == 0


async def test_a_reorganised_confirmed_delivery_goes_back_to_pending_until_final(
    anvil: Anvil, musd: str, base_chain: Anvil, database: Database
) -> None:
    """Base's registry entry says a block is final at depth 600: until then a confirmed
    delivery is watched, and a reorg that removes its transfer un-confirms it."""
    # A time-out far shorter than the session's age: a transfer that was seen and went
    # away is waited for, not failed.
    settings = ChainSettings.model_validate(
        {**two_networks(anvil, musd, base_chain), "DELIVERY_TIMEOUT_SECONDS": "1"}
    )
    wallet = str(Account.create().address)
    funder = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    call = base_chain.contract("TestUSDC", BASE_USDC.address).functions.transfer(
        wallet, 7 * USDC_UNIT
    )
    raw = funder.sign_transaction(
        call.build_transaction(
            {
                "from": funder.address,
                "nonce": base_chain.w3.eth.get_transaction_count(funder.address),
                "gas": 100_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
                "chainId": base_chain.chain_id,
            }
        )
    ).raw_transaction
    snapshot = base_chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    tx = "0x" + bytes(base_chain.w3.eth.send_raw_transaction(raw)).hex()
    mine(base_chain, BASE_USDC.confirmations)
    session = await fulfilled_session(database, "7", tx, wallet, network="base", currency="usdc")

    await run_rounds(database, settings)
    confirmed = await session_row(database, session.id)
    assert confirmed.delivery_status == "confirmed"
    assert "watched for reorganisation until 600" in (confirmed.delivery_detail or "")
    assert (await check_row(database, session.id)).finished_at is None
    first_block = confirmed.delivery_block_hash

    base_chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    mine(base_chain, 1)  # another block at that height, without the transfer
    await run_rounds(database, settings)
    gone = await session_row(database, session.id)
    assert gone.delivery_status == "pending"
    assert "not on the chain" in (gone.delivery_detail or "")
    assert len(await credits_of(database, session.id)) == 1  # still held for it

    base_chain.w3.eth.send_raw_transaction(raw)  # the same transaction, included again
    mine(base_chain, BASE_USDC.confirmations)
    await run_rounds(database, settings)
    again = await session_row(database, session.id)
    assert again.delivery_status == "confirmed"
    assert again.delivery_block_hash != first_block
    assert (await check_row(database, session.id)).finished_at is None

    mine(base_chain, BASE_USDC.finality_depth)
    await run_rounds(database, settings)
    final = await session_row(database, session.id)
    assert final.delivery_status == "confirmed"
    assert final.delivery_detail == f"{final.delivery_confirmations} confirmations"
    assert (await check_row(database, session.id)).finished_at is not None
