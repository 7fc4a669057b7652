"""The operators' repair of one session from Stripe's word (X-API-Key)."""

from __future__ import annotations

from litestar import post
from litestar.datastructures import State
from litestar.params import FromPath

from service.auth.guards import API_KEY_SECURITY, Operator
from service.onramp import schemas
from service.openapi import NO_API_KEY, WRONG_API_KEY, problems
from service.reconciliation.provider import ReconciliationServices
from service.reconciliation.replay import sync_session as sync_with_stripe


@post(
    "/api/v1/admin/sessions/{session_id:str}/sync",
    status_code=200,
    tags=["operations"],
    summary="Re-read a session from Stripe and reconcile it",
    security=API_KEY_SECURITY,
    responses=problems(
        {
            400: "Not a valid request.",
            401: NO_API_KEY,
            403: WRONG_API_KEY,
            404: "No such session.",
            409: "The session has no Stripe session yet (`session_incomplete`).",
            502: "Stripe is unreachable or failing (`stripe_unavailable`).",
            503: "Stripe is not configured (`stripe_not_configured`) or the database is "
            "not reachable.",
        }
    ),
)
async def sync_session(
    session_id: FromPath[str], operator: Operator, state: State
) -> schemas.SessionSummary:
    found = ReconciliationServices.of(state)
    return await sync_with_stripe(found.database, found.stripe, session_id)


routes = [sync_session]
