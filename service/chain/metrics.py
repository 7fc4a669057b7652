"""Prometheus metrics of the chain side: RPC calls by node, delivery verdicts."""

from prometheus_client import Counter, Histogram

rpc_calls = Counter(
    "onramp_rpc_calls_total", "JSON-RPC calls by node host and outcome.", ["host", "outcome"]
)
rpc_seconds = Histogram(
    "onramp_rpc_seconds",
    "JSON-RPC call latency by node host.",
    ["host"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
delivery_checks = Counter(
    "onramp_delivery_checks_total", "Delivery checks by the verdict they reached.", ["status"]
)
