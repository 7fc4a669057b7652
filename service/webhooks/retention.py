"""Keeping the event log to what sessions still need (`onramp webhooks prune`).

An event received more than `older_than_days` ago is deleted unless one of these keeps
it (each is a reason in the report):

- `not_processed`: it was never processed successfully (no `processed_at`, or its
  outcome is `failed`). Stripe's redelivery or `onramp webhooks replay` still has to
  apply it.
- `session_not_settled`: a session it names (by our id or by Stripe's) is not settled
  yet (`Lifecycle.is_settled`: refused by Stripe, or its delivery decided); until then
  `webhooks replay` may be what moves it. A later `delivery recheck` of a settled
  session needs no events: its status is final (nothing moves it) and its transaction
  hash is stored and never replaced.
- `unknown_session_recent`: it names a session this database does not hold, and it is
  younger than `UNKNOWN_SESSION_DAYS` (or `older_than_days`, if longer). Such events are
  the only local trace of a session lost in a restore from an older backup; `onramp
  sessions import` recreates the session, and `webhooks replay` then applies them.
  Thirty days leaves time to notice and repair a restore, and matches how long Stripe
  keeps events (its events API lists the last 30 days), so our log is never the
  shorter record of the two.

What goes: events of settled sessions, events that name no session at all (other event
types), and events of unknown sessions past that window. Redelivered by Stripe after
that (its retries end after three days), an event is stored and applied again, which
changes nothing on a settled session.

Deletion runs in batches of `batch_size`, each one statement on its own, so no lock is
held for long and the service goes on receiving events. Running it again deletes
nothing more, unless sessions have settled or time has passed meanwhile. Reusable by a
scheduled job: it needs only a `Database`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.database import Database
from service.onramp.lifecycle import LIFECYCLE, Lifecycle
from service.webhooks import DEFAULT_BATCH_SIZE
from service.webhooks.repository import NOT_NEEDED, delete_not_needed, old_events_by_need

UNKNOWN_SESSION_DAYS = 30
KEPT_REASONS = ("not_processed", "session_not_settled", "unknown_session_recent")


@dataclass(frozen=True)
class Pruned:
    """How many old events went (`deleted`, or `would_delete` in a dry run) or were
    `kept`, and why."""

    outcome: str
    reason: str
    events: int


async def prune_events(
    database: Database,
    *,
    older_than_days: int,
    now: datetime,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    lifecycle: Lifecycle = LIFECYCLE,
) -> list[Pruned]:
    """Delete events received more than `older_than_days` before `now` that no session
    needs; what went, and what was kept among the old ones, by reason."""
    before = now - timedelta(days=older_than_days)
    unknown_before = now - timedelta(days=max(older_than_days, UNKNOWN_SESSION_DAYS))
    counts = await old_events_by_need(database, before, unknown_before, lifecycle)
    if dry_run:
        return _report("would_delete", counts.get(NOT_NEEDED, 0), counts)
    deleted, total = 0, counts.get(NOT_NEEDED, 0)
    while True:
        went = await delete_not_needed(database, before, unknown_before, batch_size, lifecycle)
        deleted += went
        if progress is not None:
            progress(deleted, max(total, deleted))
        if went < batch_size:
            break
    return _report(
        "deleted", deleted, await old_events_by_need(database, before, unknown_before, lifecycle)
    )


def _report(outcome: str, gone: int, counts: dict[str, int]) -> list[Pruned]:
    kept = [Pruned("kept", reason, counts.get(reason, 0)) for reason in KEPT_REASONS]
    return [Pruned(outcome, "no_session_needs_them", gone), *kept]
