"""What `/health` and `/ready` read, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.chain.rpc import Chains
from service.database import Database
from service.providers import Provider
from service.ratelimit import RateLimiter
from service.replica import ReplicaReads


@dataclass(frozen=True, slots=True)
class OperationsServices(Provider):
    database: Database
    chains: Chains
    rate_limiter: RateLimiter
    # The replica of DATABASE_READ_URL, reported to operators; None without one.
    replica: ReplicaReads | None
