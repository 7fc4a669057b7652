"""What `GET /api/v1/config` and the demo page read, built by `create_app`
(service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.chain.destinations import Destinations
from service.database import Database
from service.providers import Provider
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class DappServices(Provider):
    settings: Settings
    destinations: Destinations
    database: Database
