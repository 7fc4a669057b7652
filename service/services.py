"""The services routes use, assembled once by `create_app` and kept in the app's state.

Every route takes them the same way, `services(state)`, rather than as dependencies:
Litestar resolves two dependencies of the same depth in an anyio task group, which
cost 50 µs a request on the hot routes (bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State

from service.auth.service import SignIn
from service.chain.destinations import Destinations
from service.chain.rpc import Chains
from service.database import Database
from service.live.changes import SessionChanges
from service.onramp.creation import SessionCreation
from service.onramp.quotes import Quotes
from service.onramp.stripe_client import StripeOnramp
from service.ratelimit import RateLimiter
from service.settings import Settings
from service.webhooks.service import WebhookIngestion


@dataclass(frozen=True)
class Services:
    settings: Settings
    database: Database
    # Listings read here: the replica (DATABASE_READ_URL), or `database` itself.
    read_database: Database
    chains: Chains
    destinations: Destinations
    stripe: StripeOnramp
    sign_in: SignIn
    creation: SessionCreation
    quotes: Quotes
    changes: SessionChanges
    webhooks: WebhookIngestion
    rate_limiter: RateLimiter


def services(state: State) -> Services:
    found: Services = state.services
    return found
