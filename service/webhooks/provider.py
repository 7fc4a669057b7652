"""What Stripe's webhook route uses, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.providers import Provider
from service.webhooks.service import WebhookIngestion


@dataclass(frozen=True, slots=True)
class WebhookServices(Provider):
    ingestion: WebhookIngestion
