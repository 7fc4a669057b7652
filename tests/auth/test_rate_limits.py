"""Sign-in budgets per client IP and per wallet, in memory and shared through Redis."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth.service import LIVE_NONCES_PER_WALLET
from service.settings import Settings
from tests.support.anvil import Anvil

Client = Callable[..., AsyncTestClient[Litestar]]
REDIS_URL = "redis://127.0.0.1:6379/0"


def random_ip() -> str:
    return str(ipaddress.IPv4Address((10 << 24) | secrets.randbits(24)))


def a_wallet() -> str:
    return str(Account.create().address)


async def ask_nonce(
    client: AsyncTestClient[Litestar], wallet: str, ip: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post("/api/v1/auth/nonce", json={"walletAddress": wallet}, headers=headers)


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_one_ip_is_limited_across_wallets(make_client: Client) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="3") as client:
        for _ in range(3):
            assert (await ask_nonce(client, a_wallet())).status_code == 200
        assert_limited(await ask_nonce(client, a_wallet()))


async def test_nobody_can_lock_a_wallet_out_of_asking_for_a_nonce(make_client: Client) -> None:
    """Requests naming a wallet prove nothing about its key: they are charged to the
    client's address only, so the victim, elsewhere, still signs in."""
    victim = a_wallet()
    attacker_ip = random_ip()
    async with make_client(RATE_LIMIT_PER_MINUTE="5", TRUSTED_PROXIES="*") as client:
        for _ in range(5):
            assert (await ask_nonce(client, victim, attacker_ip)).status_code == 200
        assert_limited(await ask_nonce(client, victim, attacker_ip))
        assert (await ask_nonce(client, victim, random_ip())).status_code == 200


async def test_junk_signatures_naming_a_wallet_do_not_block_its_sign_in(
    make_client: Client, anvil: Anvil
) -> None:
    victim = Account.create()
    attacker_ip, victim_ip = random_ip(), random_ip()
    env = {"RATE_LIMIT_PER_MINUTE": "5", "TRUSTED_PROXIES": "*", "MEZO_RPC_URLS": anvil.url}
    async with make_client(**env) as client:
        for _ in range(5):
            issued = (await ask_nonce(client, victim.address, attacker_ip)).json()
            junk = await client.post(
                "/api/v1/auth/verify",
                json={"message": issued["message"], "signature": "0x" + "11" * 65},
                headers={"X-Forwarded-For": attacker_ip},
            )
            assert junk.status_code == 401
        issued = (await ask_nonce(client, victim.address, victim_ip)).json()
        signature = victim.sign_message(encode_defunct(text=issued["message"])).signature
        signed_in = await client.post(
            "/api/v1/auth/verify",
            json={"message": issued["message"], "signature": "0x" + bytes(signature).hex()},
            headers={"X-Forwarded-For": victim_ip},
        )
    assert signed_in.status_code == 200, signed_in.text


async def test_one_ipv6_slash_64_shares_one_budget(make_client: Client) -> None:
    prefix = f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}"
    async with make_client(RATE_LIMIT_PER_MINUTE="3", TRUSTED_PROXIES="*") as client:
        for host in range(3):
            answer = await ask_nonce(client, a_wallet(), f"{prefix}::{host + 1:x}")
            assert answer.status_code == 200
        assert_limited(await ask_nonce(client, a_wallet(), f"{prefix}:ffff:ffff:ffff:ffff"))
        elsewhere = f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}::1"
        assert (await ask_nonce(client, a_wallet(), elsewhere)).status_code == 200


async def test_nonces_asked_in_a_wallets_name_never_push_out_its_owners(
    make_client: Client,
) -> None:
    """The owner asks for a nonce; before it has signed, others ask for many in its
    name from elsewhere. The owner's nonce still signs it in."""
    owner = Account.create()
    async with make_client(RATE_LIMIT_PER_MINUTE="1000", TRUSTED_PROXIES="*") as client:
        mine = (await ask_nonce(client, owner.address, random_ip())).json()
        for ip in (random_ip(), random_ip()):
            for _ in range(LIVE_NONCES_PER_WALLET + 2):
                assert (await ask_nonce(client, owner.address, ip)).status_code == 200
        signature = owner.sign_message(encode_defunct(text=mine["message"])).signature
        signed_in = await client.post(
            "/api/v1/auth/verify",
            json={"message": mine["message"], "signature": "0x" + bytes(signature).hex()},
        )
    assert signed_in.status_code == 200, signed_in.text


async def test_one_client_keeps_its_newest_nonces_for_a_wallet(make_client: Client) -> None:
    wallet = Account.create()
    ip = random_ip()
    async with make_client(RATE_LIMIT_PER_MINUTE="1000", TRUSTED_PROXIES="*") as client:
        issued = [
            (await ask_nonce(client, wallet.address, ip)).json()
            for _ in range(LIVE_NONCES_PER_WALLET + 1)
        ]

        async def verify(message: str) -> httpx.Response:
            signature = wallet.sign_message(encode_defunct(text=message)).signature
            return await client.post(
                "/api/v1/auth/verify",
                json={"message": message, "signature": "0x" + bytes(signature).hex()},
            )

        oldest = await verify(issued[0]["message"])
        newest = await verify(issued[-1]["message"])
    assert (oldest.status_code, oldest.json()["code"]) == (401, "nonce_invalid")
    assert newest.status_code == 200


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(make_client: Client) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="2", TRUSTED_PROXIES="10.0.0.1") as client:
        # The test client is not the trusted proxy: its own address is what counts.
        for _ in range(2):
            assert (await ask_nonce(client, a_wallet(), random_ip())).status_code == 200
        assert_limited(await ask_nonce(client, a_wallet(), random_ip()))


async def test_verify_is_limited_too(make_client: Client) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="2") as client:
        statuses = [
            (
                await client.post(
                    "/api/v1/auth/verify", json={"message": "nonsense", "signature": "0x00"}
                )
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [401, 401, 429]


async def test_replicas_share_one_budget_through_redis(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(RATE_LIMIT_PER_MINUTE="4", REDIS_URL=REDIS_URL, TRUSTED_PROXIES="*")
    ip = random_ip()
    async with (
        AsyncTestClient(app=create_app(settings)) as first,
        AsyncTestClient(app=create_app(settings)) as second,
    ):
        for client in (first, second, first, second):
            assert (await ask_nonce(client, a_wallet(), ip)).status_code == 200
        assert_limited(await ask_nonce(first, a_wallet(), ip))
        assert_limited(await ask_nonce(second, a_wallet(), ip))


async def test_an_unreachable_redis_neither_blocks_sign_in_nor_lifts_its_limit(
    make_client: Client,
) -> None:
    """Counted in the process's memory instead (tests/reliability/test_redis_outage.py)."""
    async with make_client(REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_PER_MINUTE="1") as client:
        assert (await ask_nonce(client, a_wallet())).status_code == 200
        assert_limited(await ask_nonce(client, a_wallet()))
