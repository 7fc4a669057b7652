"""Prometheus metrics of the service's own dependencies: the database and the shared
rate-limit store being away, the read replica passed over.

Counted where the outage is met and answered, once per refused request (503
`database_unavailable`), once per delivery round given up and once per rate-limit
check answered from a process's memory, so that a scrape costs no query and an outage
shows in the API's and the worker's metrics alike.
"""

from prometheus_client import Counter

database_unavailable = Counter(
    "onramp_database_unavailable_total",
    "Requests answered 503 database_unavailable and delivery rounds given up, by the part "
    "that met the outage.",
    ["component"],
)
for _component in ("api", "worker"):
    database_unavailable.labels(_component)

# Why a check was answered from memory: the store answered an error, did not answer
# within RATE_LIMIT_STORE_TIMEOUT_MS, or was not asked after a recent failure.
RATE_LIMIT_STORE_REASONS = ("error", "timeout", "skipped")
rate_limit_store_unavailable = Counter(
    "onramp_rate_limit_store_unavailable_total",
    "Rate-limit checks answered from this process's memory because REDIS_URL failed, was "
    "slow, or failed moments ago.",
    ["reason"],
)
for _reason in RATE_LIMIT_STORE_REASONS:
    rate_limit_store_unavailable.labels(_reason)

# Why a read meant for the replica of DATABASE_READ_URL went to the primary
# (service/replica.py): its schema revision differs from the primary's, it failed to
# answer (unreachable, or not within its share of DATABASE_READ_TIMEOUT_MS), or it was
# not checked yet (the primary's revision unknown).
REPLICA_FALLBACK_REASONS = ("behind", "unavailable", "unchecked")
replica_fallbacks = Counter(
    "onramp_database_replica_fallbacks_total",
    "Reads meant for the read replica (listings, reports) that went to the primary, by why.",
    ["reason"],
)
for _reason in REPLICA_FALLBACK_REASONS:
    replica_fallbacks.labels(_reason)
