"""Redis stopped, stalled or refusing commands: every rate limit still holds (in each
process's memory), no request waits on Redis longer than RATE_LIMIT_STORE_TIMEOUT_MS,
nothing answers 5xx, and operators see it in the metrics and the readiness detail.

One `redis-server` of the module's own (tests/support/redis_server.py), which each test
finds running and may stop, pause or restrict; the apps run in this process on SQLite.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.outages import RATE_LIMIT_STORE_REASONS
from service.ratelimit import StoreBreaker
from service.settings import Settings
from tests.auth.test_rate_limits import a_wallet, ask_nonce, assert_limited, random_ip
from tests.live.streams import replicas_in_threads
from tests.onramp.conftest import ADMIN_KEY, JWT_SECRET, Caller
from tests.support.metrics import samples, value
from tests.support.redis_server import RedisServer
from tests.support.stripe import RunningStripe

MakeApp = Callable[..., Litestar]
OPERATOR = {"X-API-Key": ADMIN_KEY}
STORE_METRIC = "onramp_rate_limit_store_unavailable_total"


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(module_redis: RedisServer) -> RedisServer:
    """The module's Redis, running again if the test before stopped it."""
    module_redis.start()
    return module_redis


@pytest.fixture
def store_settings(
    settings_from_env: Callable[..., Settings], migrated_sqlite: str, redis_server: RedisServer
) -> Callable[..., Settings]:
    """The app's settings on SQLite, counting in the module's Redis."""

    def build(**env: str) -> Settings:
        return settings_from_env(
            DATABASE_URL=migrated_sqlite,
            REDIS_URL=redis_server.url,
            JWT_SECRET=JWT_SECRET,
            ADMIN_API_KEYS=ADMIN_KEY,
            TRUSTED_PROXIES="*",
            **env,
        )

    return build


@pytest.fixture
def make_app(store_settings: Callable[..., Settings]) -> MakeApp:
    return lambda **env: create_app(store_settings(**env))


async def timed(request: Any) -> tuple[float, httpx.Response]:
    """How long a request took; a request stuck on Redis fails the test, not the run."""
    started = time.perf_counter()
    response: httpx.Response = await asyncio.wait_for(request, timeout=10)
    return time.perf_counter() - started, response


async def test_with_redis_stopped_each_process_limits_creation_and_nonces(
    make_app: MakeApp, redis_server: RedisServer, stripe: RunningStripe
) -> None:
    redis_server.stop()
    wallet, ip = a_wallet(), random_ip()
    stripe_env = {"STRIPE_SECRET_KEY": stripe.secret_key, "STRIPE_API_BASE": stripe.url}
    for _process in range(2):  # each process counts the whole budget in its own memory
        app = make_app(RATE_LIMIT_PER_MINUTE="3", STRIPE_MAX_NETWORK_RETRIES="0", **stripe_env)
        async with AsyncTestClient(app=app) as client:
            caller = Caller(client, wallet)
            created = [await caller.create(forwarded_for=random_ip()) for _ in range(4)]
            nonces = [await ask_nonce(client, a_wallet(), ip) for _ in range(4)]
        assert [r.status_code for r in created] == [201, 201, 201, 429], created[-1].text
        assert [r.status_code for r in nonces] == [200, 200, 200, 429]
        assert_limited(created[-1])
        assert_limited(nonces[-1])


async def test_a_paused_redis_delays_a_limited_request_by_the_store_timeout_at_most(
    make_app: MakeApp, redis_server: RedisServer
) -> None:
    async with AsyncTestClient(app=make_app(RATE_LIMIT_PER_MINUTE="1000")) as client:
        usual = statistics.median(
            [(await timed(ask_nonce(client, a_wallet(), random_ip())))[0] for _ in range(5)]
        )
        with redis_server.paused():
            stalled, first = await timed(ask_nonce(client, a_wallet(), random_ip()))
            after, second = await timed(ask_nonce(client, a_wallet(), random_ip()))
    assert (first.status_code, second.status_code) == (200, 200)
    # RATE_LIMIT_STORE_TIMEOUT_MS is 50 by default; the checks after it skip Redis.
    assert stalled < usual + 0.1, (usual, stalled)
    assert after < usual + 0.05, (usual, after)


async def test_redis_refusing_the_window_read_of_a_client_over_its_limit_is_a_429(
    make_app: MakeApp, redis_server: RedisServer
) -> None:
    ip = random_ip()
    async with AsyncTestClient(app=make_app(RATE_LIMIT_PER_MINUTE="2")) as client:
        for _ in range(2):
            assert (await ask_nonce(client, a_wallet(), ip)).status_code == 200
        # Counting (a script's INCRBY) still works; the reads of the window do not.
        with redis_server.refusing("get", "ttl"):
            over = await ask_nonce(client, a_wallet(), ip)
    assert_limited(over)
    assert over.headers["retry-after"] == "60"  # the window's end is unknown: all of it


async def store_failures(client: AsyncTestClient[Litestar]) -> dict[str, float]:
    scraped = samples((await client.get("/metrics")).text)
    return {
        reason: value(scraped, STORE_METRIC, reason=reason) for reason in RATE_LIMIT_STORE_REASONS
    }


async def test_operators_see_the_store_degraded_and_public_ready_stays_ready(
    make_app: MakeApp, redis_server: RedisServer
) -> None:
    async with AsyncTestClient(app=make_app()) as client:
        assert (await client.get("/api/v1/admin/ready", headers=OPERATOR)).json()["checks"][
            "rateLimitStore"
        ] == {"status": "ok", "store": "redis"}
        before = await store_failures(client)
        redis_server.stop()
        for _ in range(2):
            assert (await ask_nonce(client, a_wallet(), random_ip())).status_code == 200
        counted = await store_failures(client)
        detail = await client.get("/api/v1/admin/ready", headers=OPERATOR)
        public = await client.get("/ready")

        redis_server.start()
        again = await client.get("/api/v1/admin/ready", headers=OPERATOR)
        ip = random_ip()
        assert (await ask_nonce(client, a_wallet(), ip)).status_code == 200

    assert counted["error"] >= before["error"] + 1
    assert sum(counted.values()) == sum(before.values()) + 2
    assert (detail.status_code, detail.json()["status"]) == (200, "ready")
    assert detail.json()["checks"]["rateLimitStore"] == {
        "status": "degraded",
        "store": "redis",
        "detail": "ConnectionError",
    }
    assert (public.status_code, public.json()) == (200, {"status": "ready"})
    assert again.json()["checks"]["rateLimitStore"] == {"status": "ok", "store": "redis"}
    assert redis_server.count_keys(f"onramp:*/nonce/ip/{ip}*") == 1  # counted in Redis again


async def test_requests_waiting_on_a_stalled_redis_share_a_bounded_pool(
    store_settings: Callable[..., Settings], redis_server: RedisServer
) -> None:
    """40 requests at once on a real server (the test client takes one at a time), with
    a deadline long enough for all of them to be waiting on Redis together."""
    settings = store_settings(
        RATE_LIMIT_PER_MINUTE="1000", RATE_LIMIT_STORE_TIMEOUT_MS="1000", REDIS_MAX_CONNECTIONS="5"
    )
    open_at_once: list[int] = []
    with replicas_in_threads(settings, count=1) as (url,), redis_server.paused():
        before = redis_server.clients()  # this test's own
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            requests = asyncio.gather(
                *(
                    http.post(
                        "/api/v1/auth/nonce",
                        json={"walletAddress": a_wallet()},
                        headers={"X-Forwarded-For": random_ip()},
                    )
                    for _ in range(40)
                )
            )
            while not requests.done():
                open_at_once.append(redis_server.clients())
                await asyncio.wait([requests], timeout=0.01)
            answers = requests.result()
    assert {response.status_code for response in answers} == {200}
    assert 1 <= max(open_at_once) - before <= 5, (before, open_at_once)


def test_after_a_failure_one_check_asks_the_store_again_per_interval() -> None:
    now = [0.0]
    breaker = StoreBreaker(1.0, clock=lambda: now[0])
    assert [breaker.allows(), breaker.allows()] == [True, True]
    breaker.failed("ConnectionError")
    now[0] = 0.9
    assert not breaker.allows()
    now[0] = 1.0
    assert breaker.allows()  # this one asks
    assert not breaker.allows()  # the others wait for its answer in memory
    breaker.failed("ConnectionError")
    now[0] = 2.0
    assert breaker.allows()
    breaker.answered()
    assert (breaker.allows(), breaker.open) == (True, False)
