"""What the live status route uses, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

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
