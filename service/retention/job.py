"""What the service deletes, and why each kind may go (docs/operations.md, "Retention
policy"). Run by the delivery worker on a schedule (`schedule.py`) and by `onramp
retention run`; the statements are each table owner's.

- Idempotency keys 24 h after their create call: the API contract's replay window.
- Nonces an hour after they expired: a spent or expired nonce can never be used again,
  the hour is for audit.
- Stream tickets an hour after they expired: an expired or used ticket opens no stream;
  the hour answers a used one's reconnect (service/auth/tickets.py).
- Webhook events older than `WEBHOOK_RETENTION_DAYS` that no session still needs: the
  very rules and code of `onramp webhooks prune` (`service/webhooks/retention.py`).
- Delivery checks finished more than `DELIVERY_CHECK_RETENTION_DAYS` ago: decided for
  good, their verdict kept on the session (`delivery/checks.py` says why nothing needs
  them).
- Merchant webhooks older than `OUTGOING_WEBHOOK_RETENTION_DAYS`: attempts (the delivery
  log), finished deliveries, and events no delivery still due or kept is of (a replay
  reaches back that far; a delivery never outlives its event).

Sessions, the delivery ledger, the operators' audit trail and everything finance reads
are never deleted.

Every delete takes at most `RETENTION_BATCH_SIZE` rows in a statement committed on its
own, so no lock is held for long and requests go on meanwhile; a run stopped half-way
has deleted only what it may, and the next run goes on from there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from service.auth import repository as nonces
from service.auth import tickets
from service.database import Database
from service.delivery import checks
from service.merchant_webhooks import repository as merchant_webhooks
from service.onramp import idempotency_keys
from service.settings import RetentionSettings
from service.webhooks.retention import prune_events

log = structlog.get_logger("onramp.retention")


@dataclass(frozen=True)
class Cleared:
    """Rows of one table that went (`deleted`, or `would_delete` in a dry run) or were
    `kept`, and why."""

    table: str
    outcome: str
    reason: str
    rows: int


@dataclass(frozen=True)
class _Expiring:
    table: str
    reason: str
    count: Callable[[], Awaitable[int]]
    delete: Callable[[int], Awaitable[int]]


def _expiring(database: Database, settings: RetentionSettings, now: datetime) -> list[_Expiring]:
    finished_before = now - timedelta(days=settings.delivery_check_days)
    webhooks_kept = timedelta(days=settings.outgoing_webhook_days)
    return [
        _Expiring(
            "idempotency_keys",
            "older_than_24_hours",
            lambda: idempotency_keys.count_expired(database, now),
            lambda batch: idempotency_keys.delete_expired(database, now, batch),
        ),
        _Expiring(
            "auth_nonces",
            "expired_over_an_hour_ago",
            lambda: nonces.count_expired(database, now),
            lambda batch: nonces.delete_expired(database, now, batch),
        ),
        _Expiring(
            "stream_tickets",
            "expired_over_an_hour_ago",
            lambda: tickets.count_expired(database, now),
            lambda batch: tickets.delete_expired(database, now, batch),
        ),
        _Expiring(
            "delivery_checks",
            f"finished_over_{settings.delivery_check_days}_days_ago",
            lambda: checks.count_finished(database, finished_before),
            lambda batch: checks.delete_finished(database, finished_before, batch),
        ),
        *(
            _merchant_webhooks(database, kind, now - webhooks_kept)
            for kind in merchant_webhooks.RETAINED
        ),
    ]


def _merchant_webhooks(database: Database, kind: str, before: datetime) -> _Expiring:
    return _Expiring(
        f"merchant_webhook_{kind}",
        "older_than_retention",
        lambda: merchant_webhooks.count_old(database, kind, before),
        lambda batch: merchant_webhooks.delete_old(database, kind, before, batch),
    )


async def run_retention(
    database: Database,
    settings: RetentionSettings,
    *,
    now: datetime,
    dry_run: bool = False,
) -> list[Cleared]:
    """Delete, batch by batch, every row past its retention at `now`; what went and
    what was kept, by table and reason. A dry run only counts."""
    cleared = []
    for kind in _expiring(database, settings, now):
        if dry_run:
            cleared.append(Cleared(kind.table, "would_delete", kind.reason, await kind.count()))
        else:
            gone = await in_batches(kind.delete, settings.batch_size)
            cleared.append(Cleared(kind.table, "deleted", kind.reason, gone))
    pruned = await prune_events(
        database,
        older_than_days=settings.webhook_days,
        now=now,
        dry_run=dry_run,
        batch_size=settings.batch_size,
    )
    cleared += [Cleared("webhook_events", p.outcome, p.reason, p.events) for p in pruned]
    if not dry_run:
        log.info(
            "retention_run",
            **{c.table: c.rows for c in cleared if c.outcome == "deleted"},
        )
    return cleared


async def in_batches(delete: Callable[[int], Awaitable[int]], batch_size: int) -> int:
    """Run `delete(batch_size)` until a batch comes back short; how many rows went."""
    gone = 0
    while True:
        went = await delete(batch_size)
        gone += went
        if went < batch_size:
            return gone
