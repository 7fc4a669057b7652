"""Re-applying stored events: the repair tool for anything processing missed.

Safe to run any number of times: application is the same compare-and-set as on
delivery, so an event that already moved its session changes nothing. A dry run does
the real work inside a transaction and rolls it back, so it reports exactly what a real
run would do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from service.columns import utcnow
from service.database import Database
from service.sql import RollBack
from service.webhooks.repository import record_outcome, stored_events
from service.webhooks.service import apply_event, stored_event


@dataclass(frozen=True)
class Replayed:
    event_id: str
    type: str
    outcome: str
    onramp_session_id: str | None
    error: str | None = None


async def replay_events(
    database: Database,
    *,
    since: datetime | None = None,
    event_ids: list[str] | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Replayed]:
    rows = await stored_events(database, since=since, event_ids=event_ids)
    results = []
    for done, row in enumerate(rows, start=1):
        results.append(await _replay_one(database, row.id, row.type, row.payload, dry_run))
        if progress is not None:
            progress(done, len(rows))
    return results


async def _replay_one(
    database: Database, event_id: str, event_type: str, payload: str, dry_run: bool
) -> Replayed:
    now = utcnow()
    try:
        event = stored_event(payload)
        async with database.transaction() as sql:
            applied = await apply_event(sql, event, now)
            if dry_run:
                raise RollBack
            await record_outcome(sql, event_id, applied.outcome, applied.onramp_session_id, now)
    except Exception as error:  # one bad event must not stop the replay of the rest
        return Replayed(event_id, event_type, "failed", None, f"{type(error).__name__}: {error}")
    return Replayed(event_id, event_type, applied.outcome, applied.onramp_session_id)
