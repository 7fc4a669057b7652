"""Liveness and readiness, as orchestrators and load balancers probe them."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.prometheus import PrometheusController

from service import migrations
from service.auth.guards import API_KEY_SECURITY, Operator
from service.openapi import OPERATOR_REFUSALS, problems
from service.operations.provider import OperationsServices


@cache
def _head_revision() -> str | None:
    return migrations.head_revision()


@get("/health", tags=["operations"], summary="The process is alive")
async def health() -> dict[str, str]:
    """No dependencies are checked: a restart would not cure a database outage."""
    return {"status": "ok"}


class Readiness(msgspec.Struct):
    """Whether this replica takes traffic, and nothing about why (that is the
    operators', at /api/v1/admin/ready): node hosts, the schema revision and the
    database's errors tell a stranger what the service runs on."""

    status: Literal["ready", "unavailable"]


@get(
    "/ready",
    tags=["operations"],
    summary="The service can take traffic",
    responses={
        503: ResponseSpec(
            Readiness,
            description="The database is unreachable or its schema is behind this release"
            " (operators read which at /api/v1/admin/ready).",
            generate_examples=False,
        )
    },
)
async def ready(state: State) -> Response[Readiness]:
    """503 while the database is unreachable or its schema is behind this release."""
    healthy, _ = await _readiness(OperationsServices.of(state))
    return Response(
        Readiness("ready" if healthy else "unavailable"), status_code=200 if healthy else 503
    )


@get(
    "/api/v1/admin/ready",
    tags=["operations"],
    summary="Readiness with each check's detail: database, schema revision, read replica,"
    " RPC nodes, the rate-limit store",
    security=API_KEY_SECURITY,
    responses={
        **problems(OPERATOR_REFUSALS),
        503: ResponseSpec(
            dict[str, Any],
            description="Not ready; `checks` says which check failed and why.",
            generate_examples=False,
        ),
    },
)
async def ready_in_detail(operator: Operator, state: State) -> Response[dict[str, Any]]:
    """/ready's answer with its reasons. The chain is reported as last seen, and the
    read replica (DATABASE_READ_URL) as checked now, and the rate-limit store as a PING
    finds it (`degraded` while limits are counted per process), none of them required:
    a node outage delays delivery checks, a replica behind or away sends the listings
    to the primary, and a Redis outage only stops budgets being shared between
    processes."""
    found = OperationsServices.of(state)
    healthy, checks = await _readiness(found)
    if found.replica is not None:
        checks["replica"] = await found.replica.report()
    return Response(
        {
            "status": "ready" if healthy else "unavailable",
            "checks": {
                **checks,
                "rpc": found.chains.report(),
                "rateLimitStore": await found.rate_limiter.check(),
            },
        },
        status_code=200 if healthy else 503,
    )


async def _readiness(found: OperationsServices) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Whether the database answers with the schema this release needs, and each
    check's detail."""
    checks: dict[str, dict[str, Any]] = {"database": await found.database.check()}
    if checks["database"]["status"] == "ok":
        revision = checks["database"].pop("revision")
        head = _head_revision()
        checks["schema"] = {
            "status": "ok" if revision == head else "behind",
            "revision": revision,
            "head": head,
        }
    return all(check["status"] == "ok" for check in checks.values()), checks


class Metrics(PrometheusController):
    """Litestar's Prometheus endpoint, documented as the text it serves, not as JSON."""

    @get(
        media_type="text/plain",
        tags=["operations"],
        summary="Prometheus metrics, in the text exposition format",
    )
    async def get(self) -> Response[bytes]:
        response: Response[bytes] = await PrometheusController.get.fn(self)
        return response
