"""What the endpoint routes use, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.database import Database
from service.merchant_webhooks.addresses import Resolver
from service.providers import Provider


@dataclass(frozen=True, slots=True)
class MerchantWebhookServices(Provider):
    database: Database
    read_database: Database
    # Production or staging: endpoints must be https:// and resolve to public addresses.
    deployed: bool
    resolver: Resolver
