"""What the operators' sync route uses, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.database import Database
from service.onramp.stripe_client import StripeOnramp
from service.providers import Provider


@dataclass(frozen=True, slots=True)
class ReconciliationServices(Provider):
    database: Database
    stripe: StripeOnramp
