"""Sign-in's checks on chain are bounded: each `eth_call` by SIGN_IN_GAS_CAP, each nonce
by three verifies that ask the chain, each client network by
RATE_LIMIT_CHAIN_CHECKS_PER_MINUTE. A contract wallet whose code loops, reverts or
answers garbage is refused at once and counts against no node: the nodes stay healthy
in /ready and the delivery worker keeps using them. Real app, anvil and RPC proxies
that count what they are asked."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from service.app import create_app
from service.auth.rules import CHAIN_CHECKS_PER_NONCE
from service.auth.signatures import ERC6492_SUFFIX
from service.delivery.worker import DeliveryWorker
from service.demo.local_servers import patient
from service.operations.provider import OperationsServices
from service.settings import Settings
from tests.auth.test_rate_limits import assert_limited, random_ip
from tests.auth.test_sign_in import assert_refused, nonce_for, signature_of, verify
from tests.delivery.conftest import MUSD_UNIT, fulfilled_session, make_due, send, session_row
from tests.support.anvil import Anvil
from tests.support.rpc_trouble import TroubledNode, troubled_node_before

OPERATOR_KEY = "ops-key-for-chain-checks-0123456789abcdef"
HOSTILE = ("loop", "revert", "garbage")  # HostileWallet's behaviours, in its order
Settle = Callable[..., Settings]


@pytest.fixture(scope="module")
def hostile_wallets(anvil: Anvil) -> dict[str, str]:
    return {name: anvil.deploy("HostileWallet", code) for code, name in enumerate(HOSTILE)}


@pytest.fixture
def second_node(anvil: Anvil) -> Iterator[TroubledNode]:
    """Another proxy in front of the run's anvil: the failover's next URL."""
    with troubled_node_before(anvil.url) as node:
        yield node


@pytest.fixture
def owner() -> LocalAccount:
    created: LocalAccount = Account.create()
    return created


def stranger_signs(message: str) -> str:
    return signature_of(Account.create(), message)


async def fail_every_check_on_chain(client: AsyncTestClient[Litestar], message: str) -> None:
    """As many strangers' signatures of `message` as its nonce may have checked."""
    for _ in range(CHAIN_CHECKS_PER_NONCE):
        assert_refused(await verify(client, message, stranger_signs(message)), "signature_invalid")


async def node_statuses(client: AsyncTestClient[Litestar]) -> list[str]:
    """The nodes' health as operators see it (the public /ready says only ready or not)."""
    ready = (await client.get("/api/v1/admin/ready", headers={"X-API-Key": OPERATOR_KEY})).json()
    return [node["status"] for node in ready["checks"]["rpc"]["nodes"]]


@pytest.mark.parametrize("behaviour", HOSTILE)
async def test_a_hostile_contract_wallet_is_refused_at_once_on_the_first_node_alone(
    make_settings: Settle,
    troubled_node: TroubledNode,
    second_node: TroubledNode,
    hostile_wallets: dict[str, str],
    behaviour: str,
) -> None:
    first, second = troubled_node, second_node
    settings = make_settings(MEZO_RPC_URLS=f"{first.url},{second.url}", ADMIN_API_KEYS=OPERATOR_KEY)
    counted = {"host": first.url.removeprefix("http://"), "outcome": "execution_failed"}
    async with AsyncTestClient(app=create_app(settings)) as client:
        for _ in range(3):  # as many as would open a failing node's circuit
            issued = await nonce_for(client, hostile_wallets[behaviour])
            started = time.perf_counter()
            response = await verify(client, issued["message"], stranger_signs(issued["message"]))
            elapsed = time.perf_counter() - started
            assert_refused(response, "signature_invalid")
            # At once: no retry, no wait on a time-out (half a second, more on a busy machine).
            assert elapsed < patient(0.5), f"{behaviour}: {elapsed:.2f} s"
        assert len(first.calls_of("eth_call")) == 3  # one call each, never repeated
        assert second.requests == 0  # nor tried on the next node
        assert await node_statuses(client) == ["ok", "unknown"]
    # Counted apart from the node's own errors (garbage is an answer, not a failure).
    failed_in_execution = REGISTRY.get_sample_value("onramp_rpc_calls_total", counted)
    assert failed_in_execution == (None if behaviour == "garbage" else 3)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_after_a_looping_wallet_the_delivery_worker_still_uses_the_node(
    make_settings: Settle,
    anvil: Anvil,
    troubled_node: TroubledNode,
    second_node: TroubledNode,
    hostile_wallets: dict[str, str],
    database_url: str,
) -> None:
    """The same process's chain client serves sign-in and delivery checks: a node that
    sign-in wrongly blamed would be skipped by the worker for the cool-down."""
    first, second = troubled_node, second_node
    musd = anvil.deploy_token(10**30)
    settings = make_settings(
        MEZO_RPC_URLS=f"{first.url},{second.url}",
        MUSD_TOKEN_ADDRESS=musd,
        DATABASE_URL=database_url,
        ADMIN_API_KEYS=OPERATOR_KEY,
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        for _ in range(CHAIN_CHECKS_PER_NONCE):
            issued = await nonce_for(client, hostile_wallets["loop"])
            response = await verify(client, issued["message"], stranger_signs(issued["message"]))
            assert_refused(response, "signature_invalid")

        operations = OperationsServices.of(app.state)
        wallet = str(Account.create().address)
        tx_hash = send(anvil, musd, wallet, 25 * MUSD_UNIT)
        session = await fulfilled_session(operations.database, "25", tx_hash, wallet)
        await make_due(operations.database)
        await DeliveryWorker(operations.database, operations.chains, settings.chain).run_once()

        checked = await session_row(operations.database, session.id)
        assert checked.delivery_status == "confirmed"
        assert first.calls_of("eth_getTransactionReceipt"), "the worker skipped the node"
        assert second.requests == 0
        assert await node_statuses(client) == ["ok", "unknown"]


async def test_every_eth_call_of_a_sign_in_carries_the_gas_cap(
    make_settings: Settle, anvil: Anvil, troubled_node: TroubledNode, owner: LocalAccount
) -> None:
    cap = 4_000_000
    wallet = anvil.deploy("OwnerWallet", owner.address)
    settings = make_settings(MEZO_RPC_URLS=troubled_node.url, SIGN_IN_GAS_CAP=str(cap))
    async with AsyncTestClient(app=create_app(settings)) as client:
        issued = await nonce_for(client, wallet)  # EIP-1271
        response = await verify(client, issued["message"], signature_of(owner, issued["message"]))
        assert response.status_code == 200, response.text
        issued = await nonce_for(client, str(Account.create().address))  # ERC-6492
        wrapped = "0x" + "00" * 40 + ERC6492_SUFFIX.hex()
        assert_refused(await verify(client, issued["message"], wrapped), "signature_invalid")
    calls = troubled_node.calls_of("eth_call")
    assert len(calls) == 2
    assert [call["params"][0]["gas"] for call in calls] == [hex(cap)] * 2


async def test_a_nodes_own_error_fails_over_and_only_transport_or_node_trouble_is_503(
    make_settings: Settle,
    anvil: Anvil,
    troubled_node: TroubledNode,
    second_node: TroubledNode,
    owner: LocalAccount,
) -> None:
    first, second = troubled_node, second_node
    wallet = anvil.deploy("OwnerWallet", owner.address)
    first.mode, first.methods = "rpc_error", frozenset({"eth_call"})  # "header not found"
    settings = make_settings(MEZO_RPC_URLS=f"{first.url},{second.url}", ADMIN_API_KEYS=OPERATOR_KEY)
    async with AsyncTestClient(app=create_app(settings)) as client:
        issued = await nonce_for(client, wallet)
        response = await verify(client, issued["message"], signature_of(owner, issued["message"]))
        assert response.status_code == 200, response.text
        assert second.calls_of("eth_call")
        assert await node_statuses(client) == ["unavailable", "ok"]

        for mode in ("rpc_error", "bad_gateway"):
            second.mode, second.methods = mode, frozenset({"eth_call"})
            issued = await nonce_for(client, wallet)
            answer = await verify(client, issued["message"], signature_of(owner, issued["message"]))
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "chain_unavailable"
        assert await node_statuses(client) == ["unavailable", "unavailable"]


async def test_a_nonce_allows_three_checks_on_chain_then_it_is_spent(
    make_settings: Settle,
    anvil: Anvil,
    troubled_node: TroubledNode,
    owner: LocalAccount,
    database_url: str,
) -> None:
    wallet = anvil.deploy("OwnerWallet", owner.address)
    settings = make_settings(MEZO_RPC_URLS=troubled_node.url, DATABASE_URL=database_url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        issued = await nonce_for(client, wallet)
        await fail_every_check_on_chain(client, issued["message"])
        valid = signature_of(owner, issued["message"])
        assert_refused(await verify(client, issued["message"], valid), "nonce_used")
        assert len(troubled_node.calls_of("eth_call")) == CHAIN_CHECKS_PER_NONCE

        issued = await nonce_for(client, wallet)  # a new nonce has its own
        valid = signature_of(owner, issued["message"])
        assert (await verify(client, issued["message"], valid)).status_code == 200


async def test_a_nonce_spent_by_failed_checks_on_chain_is_refused_to_its_own_key(
    make_settings: Settle, anvil: Anvil, owner: LocalAccount
) -> None:
    """Signatures that are not the key's make the service ask the chain whether the
    wallet is a contract; after three, even the key's own signature is refused."""
    async with AsyncTestClient(app=create_app(make_settings(MEZO_RPC_URLS=anvil.url))) as client:
        issued = await nonce_for(client, owner.address)
        await fail_every_check_on_chain(client, issued["message"])
        own = signature_of(owner, issued["message"])
        assert_refused(await verify(client, issued["message"], own), "nonce_used")


async def test_replicas_together_make_at_most_three_checks_on_chain_per_nonce(
    make_settings: Settle,
    anvil: Anvil,
    troubled_node: TroubledNode,
    owner: LocalAccount,
    database_url: str,
) -> None:
    wallet = anvil.deploy("OwnerWallet", owner.address)
    settings = make_settings(MEZO_RPC_URLS=troubled_node.url, DATABASE_URL=database_url)
    apps = [create_app(settings), create_app(settings)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onramp")  # type: ignore[arg-type]
        for app in apps
    ]
    try:
        issued = (
            await clients[0].post("/api/v1/auth/nonce", json={"walletAddress": wallet})
        ).json()
        bodies = [
            {"message": issued["message"], "signature": stranger_signs(issued["message"])}
            for _ in range(8)
        ]
        responses = await asyncio.gather(
            *(
                clients[n % 2].post("/api/v1/auth/verify", json=body)
                for n, body in enumerate(bodies)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
        for app in apps:
            await OperationsServices.of(app.state).database.dispose()
    codes = sorted(response.json()["code"] for response in responses)
    assert codes == ["nonce_used"] * 5 + ["signature_invalid"] * 3
    assert len(troubled_node.calls_of("eth_call")) == CHAIN_CHECKS_PER_NONCE


async def test_checks_on_chain_spend_a_budget_of_their_own_per_client_network(
    make_settings: Settle, anvil: Anvil, owner: LocalAccount
) -> None:
    wallet = anvil.deploy("OwnerWallet", owner.address)
    settings = make_settings(
        MEZO_RPC_URLS=anvil.url, RATE_LIMIT_CHAIN_CHECKS_PER_MINUTE="2", TRUSTED_PROXIES="*"
    )
    ip, elsewhere = random_ip(), f"2001:db8:{secrets.randbits(16):x}::1"
    async with AsyncTestClient(app=create_app(settings)) as client:
        for _ in range(2):
            assert_refused(await sign_in(client, None, wallet, ip), "signature_invalid")
        assert_limited(await sign_in(client, owner, wallet, ip))
        assert_limited(await sign_in(client, None, owner.address, ip))  # an EOA's junk asks too
        # A signature by the wallet's own key needs no chain; other clients have theirs.
        assert (await sign_in(client, owner, owner.address, ip)).status_code == 200
        assert (await sign_in(client, owner, wallet, elsewhere)).status_code == 200


async def sign_in(
    client: AsyncTestClient[Litestar], signer: LocalAccount | None, wallet: str, client_ip: str
) -> httpx.Response:
    """A nonce for `wallet` and its message signed by `signer` (else a stranger), both
    from `client_ip`."""
    headers = {"X-Forwarded-For": client_ip}
    issued = (
        await client.post("/api/v1/auth/nonce", json={"walletAddress": wallet}, headers=headers)
    ).json()
    signature = signature_of(signer or Account.create(), issued["message"])
    body = {"message": issued["message"], "signature": signature}
    return await client.post("/api/v1/auth/verify", json=body, headers=headers)
