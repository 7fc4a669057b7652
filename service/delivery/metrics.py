"""Prometheus metrics of deliveries: the verdicts sessions reach, how long a confirmed
delivery took, and whether a worker is still going round its loop.

A verdict is counted when a session's delivery status changes to it, not at every
check, so a confirmed delivery watched until its block is final counts once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from service.delivery.checks import ClaimedCheck
from service.delivery.decisions import Checked
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus
from service.onramp.models import SessionRow

VERDICTS = LIFECYCLE.settling_deliveries

verdicts = Counter(
    "onramp_delivery_verdicts_total",
    "Deliveries decided, by the verdict a session reached (counted when it changes).",
    ["verdict"],
)
confirmation_seconds = Histogram(
    "onramp_delivery_confirmation_seconds",
    "From a delivery check's start (the session's fulfilment, or its last recheck) to "
    "the confirmed verdict.",
    buckets=(5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0),
)
heartbeat = Gauge(
    "onramp_delivery_worker_heartbeat_timestamp_seconds",
    "When a delivery worker of this process last went round its loop (Unix time).",
    multiprocess_mode="max",
)

for _verdict in VERDICTS:
    verdicts.labels(_verdict)


def verdicts_reached(
    recorded: Mapping[str, Checked],
    before: Mapping[str, SessionRow],
    checks: Mapping[str, ClaimedCheck],
    now: datetime,
) -> None:
    """Count the verdicts a round changed, and time each new confirmation."""
    for session_id, result in recorded.items():
        previous = before.get(session_id)
        if result.status not in VERDICTS or (
            previous is not None and previous.delivery_status == result.status
        ):
            continue
        verdicts.labels(result.status).inc()
        check = checks.get(session_id)
        if result.status == DeliveryStatus.CONFIRMED and check is not None:
            confirmation_seconds.observe(max(0.0, (now - check.started).total_seconds()))
