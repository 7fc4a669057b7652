"""Rate limits hold across two `onramp serve` processes that share Redis.

tests/auth/test_rate_limits.py shares one Redis budget between two apps in one test
process; here two real server processes take the requests at the same time, as two
replicas behind a load balancer do, and together they let exactly the budget through.
Every request comes from a client IP or wallet made up for this run, so the Redis keys
are this test's own and expire within the minute; nothing is flushed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from service.demo.local_servers import wait_until_healthy
from tests.onramp.conftest import new_wallet
from tests.security.conftest import signed_in
from tests.support.processes import OnrampProcess, service_env
from tests.support.stripe import RunningStripe

BUDGET = 5
REDIS_URL = "redis://127.0.0.1:6379/5"


def a_client_ip() -> str:
    return str(ipaddress.IPv4Address((10 << 24) | secrets.randbits(24)))


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
    migrated: dict[str, str],
    stripe_server: RunningStripe,
) -> Iterator[list[str]]:
    """Two replicas behind a proxy at 127.0.0.1, started side by side."""
    env = service_env(
        migrated["postgresql"],
        stripe_server,
        REDIS_URL=REDIS_URL,
        RATE_LIMIT_PER_MINUTE=str(BUDGET),
        TRUSTED_PROXIES="127.0.0.1",
        # Sharing is what is tested here: a burst on a busy machine must not outwait the
        # store's 50 ms and be counted in memory (tests/reliability/test_redis_outage.py).
        RATE_LIMIT_STORE_TIMEOUT_MS="2000",
    )
    cwd = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        processes = [start(stack, cwd, env) for _ in range(2)]
        for process in processes:
            assert process.process is not None
            assert wait_until_healthy(process.url, process.process), process.output()
        yield [process.url for process in processes]


def start(stack: ExitStack, cwd: Path, env: dict[str, str]) -> OnrampProcess:
    process = OnrampProcess(cwd, "serve", **env)
    process.start(wait=False)
    stack.callback(process.stop)
    return process


# (replica, path, JSON body, headers) of one request.
Call = tuple[str, str, Mapping[str, object], Mapping[str, str]]


async def spread(requests: Sequence[Call]) -> Counter[int]:
    """Send every (replica, path, body, headers) at once; how many of each status."""
    async with httpx.AsyncClient(timeout=30) as http:
        responses = await asyncio.gather(
            *(
                http.post(f"{base}{path}", json=body, headers=headers)
                for base, path, body, headers in requests
            )
        )
    for response in responses:
        if response.status_code == 429:
            assert response.json()["code"] == "rate_limited"
            assert 1 <= int(response.headers["retry-after"]) <= 60
    return Counter(response.status_code for response in responses)


async def test_one_client_ip_gets_one_budget_across_replicas(replicas: list[str]) -> None:
    ip = {"X-Forwarded-For": a_client_ip()}
    requests = [
        (replicas[n % 2], "/api/v1/auth/nonce", {"walletAddress": new_wallet()}, ip)
        for n in range(3 * BUDGET)
    ]
    assert await spread(requests) == Counter({200: BUDGET, 429: 2 * BUDGET})


async def test_one_wallet_gets_one_budget_across_replicas(replicas: list[str]) -> None:
    wallet = new_wallet()
    body = {"walletAddress": wallet, "sourceAmount": "100.00"}
    requests = [
        (
            replicas[n % 2],
            "/api/v1/onramp/sessions",
            body,
            {**signed_in(wallet), "X-Forwarded-For": a_client_ip()},
        )
        for n in range(3 * BUDGET)
    ]
    assert await spread(requests) == Counter({201: BUDGET, 429: 2 * BUDGET})
