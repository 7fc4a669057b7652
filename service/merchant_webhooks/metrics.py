"""Prometheus metrics of the merchant webhooks: attempts by outcome, the age of the
oldest event not yet delivered, and how long each endpoint has been failing."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# `delivered`; `failed` (tried again later); `given_up` (its schedule spent, or its
# endpoint disabled).
OUTCOMES = ("delivered", "failed", "given_up")

deliveries = Counter(
    "onramp_merchant_webhook_deliveries_total",
    "Attempts to deliver an event to a merchant's endpoint, by outcome.",
    ["outcome"],
)
oldest_undelivered = Gauge(
    "onramp_merchant_webhook_oldest_undelivered_seconds",
    "Age of the oldest event still due to an endpoint (0 when none is).",
    multiprocess_mode="max",
)
endpoint_failing = Gauge(
    "onramp_merchant_webhook_endpoint_failing_seconds",
    "How long an enabled endpoint has answered nothing but failures (0 while it succeeds).",
    ["endpoint"],
    multiprocess_mode="max",
)

for _outcome in OUTCOMES:
    deliveries.labels(_outcome)
