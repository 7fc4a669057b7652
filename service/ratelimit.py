"""Request budgets per client IP and per wallet, shared through Redis across replicas.

Built on `limits` (the library behind slowapi and Flask-Limiter) rather than Litestar's
rate-limit middleware, because the wallet a budget belongs to is only known inside the
handler (in the body, or in the token), and `limits` counts atomically in Redis.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any, NoReturn

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from litestar import Request

from service.errors import RateLimited

log = structlog.get_logger("onramp.ratelimit")


class RateLimiter:
    """Fixed one-minute windows; the same budget for every identity kind, and for every
    action but those given a budget of their own (`budgets`, per minute)."""

    def __init__(
        self,
        per_minute: int,
        redis_url: str | None = None,
        budgets: Mapping[str, int] | None = None,
    ) -> None:
        self.limit: RateLimitItem = RateLimitItemPerMinute(per_minute)
        self.limits = {n: RateLimitItemPerMinute(m) for n, m in (budgets or {}).items()}
        self.storage: Storage = (
            RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix="onramp")
            if redis_url
            else MemoryStorage()
        )
        self.limiter = FixedWindowRateLimiter(self.storage)

    def _limit(self, action: str) -> RateLimitItem:
        return self.limits.get(action, self.limit)

    async def spend(self, action: str, **identities: str) -> None:
        """Count one `action` against each identity (ip=..., wallet=...); 429 when over."""
        await self._ask(self.limiter.hit, action, identities, refuse=True)

    async def refuse_when_spent(self, action: str, **identities: str) -> None:
        """429 while an identity has no `action` left in this window, spending nothing:
        for budgets that only some requests spend (`count`)."""
        await self._ask(self.limiter.test, action, identities, refuse=True)

    async def count(self, action: str, **identities: str) -> None:
        """Spend one `action` of each identity without refusing this request."""
        await self._ask(self.limiter.hit, action, identities, refuse=False)

    async def _ask(
        self,
        question: Callable[..., Awaitable[bool]],
        action: str,
        identities: dict[str, str],
        *,
        refuse: bool,
    ) -> None:
        """Put `question` (hit or test) to the store for each identity, an IP address
        counted as its client network; a `False` answer is a 429 when `refuse`. A Redis
        outage must not take sign-in down with it: the request passes, the failure is
        logged."""
        for kind, identity in identities.items():
            if kind == "ip":
                identity = client_network(identity)
            try:
                answer = await question(self._limit(action), action, kind, identity)
            except Exception as error:  # any storage failure: fail open, loudly
                log.error("rate_limit_storage_failed", error=type(error).__name__)
                return
            if not answer and refuse:
                await self._refuse(action, kind, identity)

    async def _refuse(self, action: str, kind: str, identity: str) -> NoReturn:
        stats = await self.limiter.get_window_stats(
            self._limit(action),
            action,
            kind,
            identity,
        )
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many {action} requests from this {kind}; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


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
