"""Liveness and readiness, as orchestrators and load balancers probe them."""

from __future__ import annotations

from functools import cache
from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.prometheus import PrometheusController

from service import migrations
from service.operations.provider import OperationsServices


@cache
def _head_revision() -> str | None:
    return migrations.head_revision()


@get("/health", tags=["operations"], summary="The process is alive")
async def health() -> dict[str, str]:
    """No dependencies are checked: a restart would not cure a database outage."""
    return {"status": "ok"}


@get(
    "/ready",
    tags=["operations"],
    summary="The service can take traffic",
    responses={
        503: ResponseSpec(
            dict[str, Any],
            description="The database is unreachable or its schema is behind; `checks` says which.",
            generate_examples=False,
        )
    },
)
async def ready(state: State) -> Response[dict[str, Any]]:
    """503 while the database is unreachable or its schema is behind this release.

    The chain is reported as last seen, not required: a node outage delays delivery
    checks but does not stop the API.
    """
    database = OperationsServices.of(state).database
    checks: dict[str, dict[str, Any]] = {"database": await database.check()}
    if checks["database"]["status"] == "ok":
        revision = checks["database"].pop("revision")
        head = _head_revision()
        checks["schema"] = {
            "status": "ok" if revision == head else "behind",
            "revision": revision,
            "head": head,
        }
    healthy = all(check["status"] == "ok" for check in checks.values())
    chains = OperationsServices.of(state).chains
    return Response(
        {
            "status": "ok" if healthy else "unavailable",
            "checks": {**checks, "rpc": chains.report()},
        },
        status_code=200 if healthy else 503,
    )


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
