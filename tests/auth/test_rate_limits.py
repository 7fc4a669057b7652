"""Sign-in budgets per client IP and per wallet, in memory and shared through Redis."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable

import httpx
from eth_account import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

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


async def test_one_wallet_is_limited_across_ips(make_client: Client) -> None:
    wallet = a_wallet()
    async with make_client(RATE_LIMIT_PER_MINUTE="3", TRUSTED_PROXIES="*") as client:
        for _ in range(3):
            assert (await ask_nonce(client, wallet, random_ip())).status_code == 200
        assert_limited(await ask_nonce(client, wallet, random_ip()))
        assert (await ask_nonce(client, a_wallet(), random_ip())).status_code == 200


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


async def test_an_unreachable_redis_does_not_block_sign_in(make_client: Client) -> None:
    async with make_client(REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_PER_MINUTE="1") as client:
        for _ in range(2):
            assert (await ask_nonce(client, a_wallet())).status_code == 200
