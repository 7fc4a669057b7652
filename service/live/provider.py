"""What the live status route uses, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request

from service.auth.tickets import StreamTickets
from service.auth.tokens import WalletToken
from service.database import Database
from service.live.changes import SessionChanges
from service.live.slots import StreamSlots
from service.providers import Provider
from service.ratelimit import RateLimiter
from service.settings import LiveSettings


@dataclass(frozen=True, slots=True)
class LiveServices(Provider):
    database: Database
    changes: SessionChanges
    rate_limiter: RateLimiter
    settings: LiveSettings
    slots: StreamSlots
    tickets: StreamTickets
    # The wallet of a request's Bearer token, 401 without one (auth/guards.py): the
    # stream asks only when it was given no ticket.
    wallet_of: Callable[[Request[Any, Any, Any]], WalletToken]
