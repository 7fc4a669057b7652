"""What the audit route uses, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.database import Database
from service.providers import Provider


@dataclass(frozen=True, slots=True)
class AuditServices(Provider):
    # The listing reads here: the replica (DATABASE_READ_URL), or the primary itself.
    read_database: Database
