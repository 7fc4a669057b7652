"""What the session routes use, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.chain.destinations import Destinations
from service.database import Database
from service.onramp.creation import SessionCreation
from service.onramp.quotes import Quotes
from service.providers import Provider
from service.ratelimit import RateLimiter
from service.settings import OnrampSettings


@dataclass(frozen=True, slots=True)
class OnrampServices(Provider):
    settings: OnrampSettings
    database: Database
    # Listings read here: the replica (DATABASE_READ_URL), or `database` itself.
    read_database: Database
    destinations: Destinations
    creation: SessionCreation
    quotes: Quotes
    rate_limiter: RateLimiter
