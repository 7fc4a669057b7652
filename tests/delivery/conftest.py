"""Chains, sessions and worker rounds for the delivery tests.

Two local chains: the run's anvil on Mezo testnet's chain id with a MUSD-like token,
and a second anvil on Base's chain id with a 6-decimal USDC stand-in placed at the
token registry's own Base USDC address.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlmodel import col, select

from service import registry
from service.chain.rpc import Chains
from service.columns import utcnow
from service.database import Database
from service.delivery.models import DeliveryCheck, DeliveryCredit
from service.delivery.worker import DeliveryWorker
from service.onramp.models import OnrampSession
from service.settings import ChainSettings
from tests.onramp.conftest import make_onramp_app, stripe_env
from tests.support.anvil import Anvil, start_anvil
from tests.support.orm import orm_session

# The session routes' fixtures: the real app against the Stripe stand-in.
__all__ = ["make_onramp_app", "stripe_env"]

BASE_CHAIN_ID = 8453
[BASE_USDC] = [t for t in registry.tokens_on("base", BASE_CHAIN_ID) if t.currency == "usdc"]
MUSD_UNIT = 10**18
USDC_UNIT = 10**6


@pytest.fixture(scope="module")
def musd(anvil: Anvil) -> str:
    """A fresh MUSD-like token per test module, so log searches see only its tests."""
    return anvil.deploy_token(10**30)


@pytest.fixture(scope="session")
def base_chain() -> Iterator[Anvil]:
    """A second chain, on Base's chain id, with USDC at the registry's address."""
    node = start_anvil(chain_id=BASE_CHAIN_ID)
    try:
        node.deploy_at("TestUSDC", BASE_USDC.address)
        mint = node.contract("TestUSDC", BASE_USDC.address).functions.mint(
            node.funder, 10**9 * USDC_UNIT
        )
        node.w3.eth.wait_for_transaction_receipt(mint.transact({"from": node.funder}))
        yield node
    finally:
        node.stop()


def send(anvil: Anvil, token: str, to: str, units: int, artifact: str = "TestMUSD") -> str:
    """A transfer from anvil's funder; its transaction hash, lower-case."""
    tx = (
        anvil.contract(artifact, token)
        .functions.transfer(to, units)
        .transact({"from": anvil.funder})
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    return "0x" + bytes(tx).hex()


def send_from(anvil: Anvil, token: str, sender: str, to: str, units: int) -> str:
    """A transfer signed by `sender` (impersonated, given gas money)."""
    anvil.w3.provider.make_request("anvil_setBalance", [sender, hex(10**18)])  # type: ignore[arg-type]
    anvil.w3.provider.make_request("anvil_impersonateAccount", [sender])  # type: ignore[arg-type]
    tx = anvil.contract("TestMUSD", token).functions.transfer(to, units).transact({"from": sender})
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    return "0x" + bytes(tx).hex()


def mine(anvil: Anvil, blocks: int) -> None:
    anvil.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def upper_case(tx_hash: str) -> str:
    return "0x" + tx_hash[2:].upper()


async def fulfilled_session(
    database: Database,
    amount: str,
    tx_hash: str | None,
    wallet: str | None = None,
    *,
    network: str = "mezo",
    currency: str = "musd",
    age_seconds: float = 30,
) -> OnrampSession:
    """A fulfilled session with its check due, as a webhook leaves it."""
    created = utcnow() - timedelta(seconds=age_seconds)
    session = OnrampSession(
        wallet_address=wallet or str(Account.create().address),
        stripe_session_id=f"cos_{secrets.token_hex(8)}",
        status="fulfillment_complete",
        source_amount="100.00",
        source_currency="usd",
        destination_currency=currency,
        destination_network=network,
        destination_amount=amount,
        transaction_hash=tx_hash,
        delivery_status="pending",
        created_at=created,
    )
    async with orm_session(database) as db, db.begin():
        db.add(session)
        db.add(DeliveryCheck(onramp_session_id=session.id, created_at=created))
    return session


async def make_due(database: Database) -> None:
    """Every unfinished check due now (the tests do not wait out the back-off)."""
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE delivery_checks SET due_at = :t WHERE finished_at IS NULL"),
            {"t": utcnow() - timedelta(seconds=1)},
        )


async def run_rounds(database: Database, settings: ChainSettings, rounds: int = 1) -> None:
    chains = Chains(settings)
    try:
        worker = DeliveryWorker(database, chains, settings)
        for _ in range(rounds):
            await make_due(database)
            await worker.run_once()
    finally:
        await chains.close()


async def session_row(database: Database, session_id: str) -> OnrampSession:
    async with orm_session(database) as db:
        session = await db.get(OnrampSession, session_id)
        assert session is not None
        return session


async def check_row(database: Database, session_id: str) -> DeliveryCheck:
    async with orm_session(database) as db:
        check = await db.get(DeliveryCheck, session_id)
        assert check is not None
        return check


async def credits_of(database: Database, session_id: str) -> list[DeliveryCredit]:
    async with orm_session(database) as db:
        query = select(DeliveryCredit).where(col(DeliveryCredit.onramp_session_id) == session_id)
        return list((await db.exec(query)).all())
