"""What other capabilities learn of a session's changes in the transaction that makes
them: a hand-down, like `updates.DeliveryChecks`, so that onramp imports none of them.

The merchant webhooks' outbox (`service.merchant_webhooks.outbox`) is passed in by the
callers, which sit above both: `webhooks/` and `reconciliation/` to `apply_update`, the
delivery worker to `repository.record_verdicts`. Rolled back with the change, an event
is never written for a change that did not happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from service.onramp.models import SessionRow
from service.sql import SqlTransaction


class Changed(StrEnum):
    STATUS = "status"  # the session moved along its lifecycle
    DELIVERY = "delivery"  # the chain's verdict on its delivery changed


@dataclass(frozen=True)
class SessionChange:
    """`session` is the row as changed when the change's statement returned it, so that
    it is not read again; None has it read."""

    session_id: str
    changed: Changed
    session: SessionRow | None = None


class SessionEvents(Protocol):
    async def record(
        self, sql: SqlTransaction, changes: list[SessionChange], now: datetime
    ) -> None: ...
