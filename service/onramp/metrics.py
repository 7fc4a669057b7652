"""Prometheus metrics of payments: sessions created and moved by Stripe's news, the money
they bring, and every call to Stripe by its outcome.

Each is counted where the change is known to have happened (a committed create, a
compare-and-set that moved a row), so a replayed request or a repeated event, which
change nothing, count nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from prometheus_client import Counter, Histogram

from service.onramp.lifecycle import LIFECYCLE

STRIPE_OPERATIONS = ("create", "retrieve", "quote", "list")
STRIPE_OUTCOMES = (
    "ok",
    "stripe_error",
    "unavailable",
    "rate_limited",
    "unauthorized",
    "idempotency_error",
)

sessions_created = Counter(
    "onramp_sessions_created_total",
    "Sessions created at Stripe and stored; a replayed create call is not counted.",
)
status_changes = Counter(
    "onramp_session_status_changes_total",
    "Sessions moved to a status by Stripe's news (webhook, sync or replay), once per move.",
    ["status"],
)
source_amount = Counter(
    "onramp_source_amount_total",
    "Money paid for sessions Stripe fulfilled, in their source currency.",
    ["currency"],
)
stripe_calls = Counter(
    "onramp_stripe_calls_total",
    "Calls to Stripe's onramp API by operation and outcome (after stripe-python's retries).",
    ["operation", "outcome"],
)
stripe_seconds = Histogram(
    "onramp_stripe_call_seconds",
    "Time of one call to Stripe's onramp API, retries included.",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# Every known series exists from the start, so that the first event is a step from zero.
for _status in LIFECYCLE.statuses[1:]:
    status_changes.labels(_status)
for _operation in STRIPE_OPERATIONS:
    stripe_seconds.labels(_operation)
    for _outcome in STRIPE_OUTCOMES:
        stripe_calls.labels(_operation, _outcome)


def session_moved(status: str, amount: str | None, currency: str | None) -> None:
    """A session moved to `status`; a fulfilled one adds what it cost to the volume."""
    status_changes.labels(status).inc()
    if status != LIFECYCLE.fulfilled or not amount or not currency:
        return
    try:
        paid = Decimal(amount)
    except InvalidOperation:
        return
    if paid.is_finite() and paid > 0:
        source_amount.labels(currency.lower()).inc(float(paid))


def stripe_call(operation: str, outcome: str, seconds: float) -> None:
    stripe_calls.labels(operation, outcome).inc()
    stripe_seconds.labels(operation).observe(seconds)
