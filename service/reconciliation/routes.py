"""The operators' repair of one session from Stripe's word (X-API-Key)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import State
from litestar.params import FromPath

from service.audit.actions import AUDITED_AS, Action
from service.audit.trail import route_audit
from service.auth.guards import API_KEY_SECURITY, Operator
from service.onramp import schemas
from service.openapi import OPERATOR_CHANGE_REFUSALS, problems
from service.reconciliation.provider import ReconciliationServices
from service.reconciliation.replay import sync_session as sync_with_stripe


@post(
    "/api/v1/admin/sessions/{session_id:str}/sync",
    status_code=200,
    tags=["operations"],
    summary="Re-read a session from Stripe and reconcile it",
    description="Audited as `sessions.sync` (`GET /api/v1/admin/audit`).",
    security=API_KEY_SECURITY,
    opt={AUDITED_AS: Action.SESSIONS_SYNC},
    responses=problems(
        {
            400: "Not a valid request.",
            **OPERATOR_CHANGE_REFUSALS,
            404: "No such session.",
            409: "The session has no Stripe session yet (`session_incomplete`).",
            502: "Stripe is unreachable or failing (`stripe_unavailable`).",
            503: "Stripe is not configured (`stripe_not_configured`) or the database is "
            "not reachable.",
        }
    ),
)
async def sync_session(
    session_id: FromPath[str], operator: Operator, request: Request[Any, Any, Any], state: State
) -> schemas.SessionSummary:
    found = ReconciliationServices.of(state)
    async with route_audit(request, found.database, operator) as audit:
        return await sync_with_stripe(found.database, found.stripe, session_id, audit)


routes = [sync_session]
