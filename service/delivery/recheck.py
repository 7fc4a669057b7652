"""`onramp delivery recheck`: chosen fulfilled sessions checked again now, decided
ones included, through the same worker a round uses."""

from __future__ import annotations

from service.audit.trail import Audit
from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.delivery.decisions import Checked
from service.delivery.worker import DeliveryWorker
from service.onramp.repository import fulfilled_sessions, lock_sessions


async def recheck_sessions(
    database: Database,
    worker: DeliveryWorker,
    audit: Audit,
    *,
    session_ids: list[str] | None = None,
    delivery_status: str | None = None,
) -> list[tuple[str, Checked]]:
    """Check chosen fulfilled sessions now, decided ones included (`onramp delivery
    recheck`). The operator's change is the reopening of their checks, audited in its
    transaction; the checks that follow are the worker's, as in any round."""
    now = utcnow()
    async with database.transaction() as sql:
        chosen = await fulfilled_sessions(sql, session_ids, delivery_status)
        await lock_sessions(sql, chosen)  # sessions before checks, as a round takes them
        for session_id in chosen:
            await checks.reopen_check(sql, session_id, now)
        await audit.record(sql, detail=f"checks reopened: {len(chosen)}")
    return [(session_id, await worker.check(session_id)) for session_id in chosen]
