"""Prometheus metrics of webhook ingestion (merged across workers in multiprocess mode)."""

from prometheus_client import Counter, Histogram

events_received = Counter(
    "onramp_webhook_events_total",
    "Verified Stripe events received, by type and processing outcome.",
    ["type", "outcome"],
)
signature_failures = Counter(
    "onramp_webhook_signature_failures_total",
    "Webhook deliveries refused because their signature did not verify.",
)
processing_seconds = Histogram(
    "onramp_webhook_processing_seconds",
    "Time to store and apply one verified event.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
lag_seconds = Histogram(
    "onramp_webhook_lag_seconds",
    "From an event's creation at Stripe to its processing here (Stripe's retries included).",
    buckets=(0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0),
)
