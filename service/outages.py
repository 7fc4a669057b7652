"""Prometheus metrics of the service's own dependencies: the database being away.

Counted where the outage is met and answered, once per refused request (503
`database_unavailable`) and once per delivery round given up, so that a scrape costs
no query and an outage shows in the API's and the worker's metrics alike.
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
