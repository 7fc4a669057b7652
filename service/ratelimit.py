"""Request budgets per client IP and per wallet, shared through Redis across replicas.

Built on `limits` (the library behind slowapi and Flask-Limiter) rather than Litestar's
rate-limit middleware, because the wallet a budget belongs to is only known inside the
handler (in the body, or in the token), and `limits` counts atomically in Redis.

Redis failing or stalling must neither take sign-in down nor leave it unlimited: each
check waits on Redis for RATE_LIMIT_STORE_TIMEOUT_MS at most, and is otherwise answered
from this process's own memory (`StoreBreaker` says for how long).
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from litestar import Request

from service.errors import RateLimited
from service.outages import rate_limit_store_unavailable

if TYPE_CHECKING:
    from redis.asyncio import BlockingConnectionPool, Redis

log = structlog.get_logger("onramp.ratelimit")

# After the store fails, how long checks are answered from memory before one asks it again.
STORE_RETRY_SECONDS = 1.0
# What a check may meet from the store: its errors (wrapped by `limits`) and our
# deadline; with Redis, also redis-py's own (`_shared_store` adds them). redis-py is
# imported only where REDIS_URL is set: it brings OpenTelemetry's SDK with it (redis 8),
# which a process counting in its own memory has no use for.
STORE_FAILURES: tuple[type[Exception], ...] = (StorageError, TimeoutError)
STORE_TIMEOUTS: tuple[type[Exception], ...] = (TimeoutError,)

Answer = TypeVar("Answer")
Refusal = tuple[str, str]  # (identity kind, identity)


class StoreBreaker:
    """Whether to ask the shared store now: always, until it fails; then not for
    `retry_after` seconds, after which the next check asks it (and the ones after it
    wait for that answer in memory, another `retry_after`), until it answers.

    Hand-written because `limits` (5.8) has no fallback of its own (Flask-Limiter and
    slowapi each write theirs around it, for their frameworks), the asyncio
    circuit-breaker packages are unmaintained (aiobreaker since 2021, aiocircuitbreaker
    since 2022), and all this needs is a timestamp."""

    def __init__(self, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self.clock = clock
        self.failed_at: float | None = None
        self.failure = ""

    @property
    def open(self) -> bool:
        return self.failed_at is not None

    def allows(self) -> bool:
        if self.failed_at is None:
            return True
        if self.clock() - self.failed_at < self.retry_after:
            return False
        self.failed_at = self.clock()  # this check asks; the next ones wait for its answer
        return True

    def failed(self, failure: str) -> None:
        self.failed_at, self.failure = self.clock(), failure

    def answered(self) -> None:
        self.failed_at, self.failure = None, ""


class RateLimiter:
    """Fixed one-minute windows; the same budget for every identity kind, and for every
    action but those given a budget of their own (`budgets`, per minute)."""

    def __init__(
        self,
        per_minute: int,
        redis_url: str | None = None,
        budgets: Mapping[str, int] | None = None,
        *,
        store_timeout_ms: int,
        max_connections: int,
    ) -> None:
        self.limit: RateLimitItem = RateLimitItemPerMinute(per_minute)
        self.limits = {n: RateLimitItemPerMinute(m) for n, m in (budgets or {}).items()}
        self.timeout = store_timeout_ms / 1000
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.breaker = StoreBreaker(STORE_RETRY_SECONDS)
        self.redis: Redis | None = None
        self.shared: FixedWindowRateLimiter | None = None
        self.failures, self.timeouts = STORE_FAILURES, STORE_TIMEOUTS
        if redis_url:
            self._shared_store(redis_url, max_connections)

    def _shared_store(self, redis_url: str, max_connections: int) -> None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError
        from redis.exceptions import TimeoutError as RedisTimeout

        self.failures = (*STORE_FAILURES, RedisError)
        self.timeouts = (*STORE_TIMEOUTS, RedisTimeout)
        self.redis = Redis(connection_pool=_pool(redis_url, self.timeout, max_connections))
        pool: dict[str, Any] = {"connection_pool": self.redis.connection_pool}
        storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            key_prefix="onramp",
            wrap_exceptions=True,
            **pool,
        )
        self.shared = FixedWindowRateLimiter(storage)

    def _limit(self, action: str) -> RateLimitItem:
        return self.limits.get(action, self.limit)

    async def spend(self, action: str, **identities: str) -> None:
        """Count one `action` against each identity (ip=..., wallet=...); 429 when over."""
        await self._ask(FixedWindowRateLimiter.hit, action, identities, refuse=True)

    async def refuse_when_spent(self, action: str, **identities: str) -> None:
        """429 while an identity has no `action` left in this window, spending nothing:
        for budgets that only some requests spend (`count`)."""
        await self._ask(FixedWindowRateLimiter.test, action, identities, refuse=True)

    async def count(self, action: str, **identities: str) -> None:
        """Spend one `action` of each identity without refusing this request."""
        await self._ask(FixedWindowRateLimiter.hit, action, identities, refuse=False)

    async def check(self) -> dict[str, Any]:
        """The store as the operators' readiness shows it: `degraded` while checks are
        answered from memory. A PING that answers closes the breaker; one that does not
        opens it. Never `down`: limits hold without the store."""
        if self.redis is None:
            return {"status": "ok", "store": "memory"}
        try:
            async with asyncio.timeout(self.timeout):
                await self.redis.ping()
        except self.failures as error:
            self.breaker.failed(self._failure(error)[1])
        else:
            self._store_answered()
        if self.breaker.open:
            return {"status": "degraded", "store": "redis", "detail": self.breaker.failure}
        return {"status": "ok", "store": "redis"}

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.connection_pool.disconnect()

    async def _ask(
        self,
        question: Callable[..., Awaitable[bool]],
        action: str,
        identities: dict[str, str],
        *,
        refuse: bool,
    ) -> None:
        """Put `question` (hit or test) to a store for each identity, an IP address
        counted as its client network; a `False` answer is a 429 when `refuse`."""
        limit = self._limit(action)
        keys = [
            (kind, client_network(identity) if kind == "ip" else identity)
            for kind, identity in identities.items()
        ]

        async def first_refusal(limiter: FixedWindowRateLimiter) -> Refusal | None:
            for kind, identity in keys:
                if not await question(limiter, limit, action, kind, identity) and refuse:
                    return kind, identity
            return None

        deadline = asyncio.get_running_loop().time() + self.timeout
        limiter, refused = await self._answer(first_refusal, deadline)
        if refused is not None:
            await self._refuse(limiter, limit, action, *refused, deadline=deadline)

    async def _answer(
        self,
        question: Callable[[FixedWindowRateLimiter], Awaitable[Answer]],
        deadline: float,
    ) -> tuple[FixedWindowRateLimiter, Answer]:
        """The shared store's answer when it gives one by `deadline`, else memory's."""
        if self.shared is not None:
            if self.breaker.allows():
                try:
                    async with asyncio.timeout_at(deadline):
                        answer = await question(self.shared)
                except self.failures as error:
                    self._store_failed(error)
                else:
                    self._store_answered()
                    return self.shared, answer
            else:
                rate_limit_store_unavailable.labels("skipped").inc()
        return self.memory, await question(self.memory)

    async def _refuse(
        self,
        limiter: FixedWindowRateLimiter,
        limit: RateLimitItem,
        action: str,
        kind: str,
        identity: str,
        *,
        deadline: float,
    ) -> NoReturn:
        """429 with when the window ends. The store that refused decides; if it cannot
        say when its window ends, the whole window is the wait."""
        retry_after = limit.get_expiry()
        try:
            async with asyncio.timeout_at(deadline):
                stats = await limiter.get_window_stats(limit, action, kind, identity)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except self.failures as error:
            self._store_failed(error)
        raise RateLimited(
            f"Too many {action} requests from this {kind}; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )

    def _store_failed(self, error: Exception) -> None:
        reason, failure = self._failure(error)
        rate_limit_store_unavailable.labels(reason).inc()
        self.breaker.failed(failure)
        log.warning("rate_limit_store_failed", error=failure)

    def _store_answered(self) -> None:
        if self.breaker.open:
            log.info("rate_limit_store_answers_again")
        self.breaker.answered()

    def _failure(self, error: Exception) -> tuple[str, str]:
        """The metric's reason and what went wrong, by type only: a message may carry
        the store's address."""
        cause = error.storage_error if isinstance(error, StorageError) else error
        if isinstance(cause, self.timeouts):
            return "timeout", f"no answer within {round(self.timeout * 1000)} ms"
        return "error", type(cause).__name__


def _pool(redis_url: str, timeout: float, max_connections: int) -> BlockingConnectionPool:
    """At most `max_connections` to Redis per process; a check waits for one as long as
    it would wait for Redis. No retries: the memory is the retry (a connection Redis
    closed while idle, by a restart, is replaced when it is taken from the pool)."""
    from redis.asyncio import BlockingConnectionPool

    pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    return pool


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The peer address; behind TRUSTED_PROXIES it is already the forwarded client's
    (service/forwarded.py)."""
    return request.client.host if request.client else "unknown"


@lru_cache(maxsize=16384)
def client_network(address: str) -> str:
    """What one client controls: an IPv4 address, or the /64 an IPv6 address is in
    (one host is routinely given a whole /64, so its addresses are one budget)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
