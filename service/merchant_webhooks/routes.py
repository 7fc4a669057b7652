"""The operators' webhook endpoints (X-API-Key): register, list, read, remove, rotate a
secret, enable again, read the delivery log. Every change is audited."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from service.audit.actions import AUDITED_AS, Action
from service.audit.trail import route_audit
from service.auth.guards import API_KEY_SECURITY, Operator
from service.merchant_webhooks import endpoints, schemas
from service.merchant_webhooks.provider import MerchantWebhookServices
from service.openapi import (
    DATABASE_UNAVAILABLE,
    OPERATOR_CHANGE_REFUSALS,
    OPERATOR_REFUSALS,
    problems,
)
from service.pages import PageLimit

BASE = "/api/v1/admin/webhook-endpoints"
_ONE = BASE + "/{endpoint_id:str}"
_TAGS = ["merchant webhooks"]
_NOT_FOUND = {404: "No such endpoint."}
_CHANGE_REFUSALS = {**OPERATOR_CHANGE_REFUSALS, 503: DATABASE_UNAVAILABLE}
_READ_REFUSALS = {**OPERATOR_REFUSALS, 503: DATABASE_UNAVAILABLE}


@post(
    BASE,
    status_code=201,
    tags=_TAGS,
    summary="Register an endpoint of the merchant's backend",
    description="Answers the endpoint with its signing `secret` (`whsec_…`), shown here and "
    "on rotation only. Deployed, the URL must be https:// and resolve to public addresses "
    "only. Audited as `endpoints.add`.",
    security=API_KEY_SECURITY,
    opt={AUDITED_AS: Action.ENDPOINTS_ADD},
    responses=problems(
        {
            400: "Not a URL an endpoint may have, or an unknown event type (`invalid_endpoint`).",
            **_CHANGE_REFUSALS,
        }
    ),
)
async def add_endpoint(
    data: JSONBody[schemas.EndpointCreate],
    operator: Operator,
    request: Request[Any, Any, Any],
    state: State,
) -> schemas.EndpointCreated:
    found = MerchantWebhookServices.of(state)
    async with route_audit(request, found.database, operator) as audit:
        row = await endpoints.add(
            found.database,
            audit,
            data.url,
            data.events,
            data.description,
            deployed=found.deployed,
            resolver=found.resolver,
        )
    return schemas.created(row)


@get(
    BASE,
    tags=_TAGS,
    summary="The endpoints, without their secrets",
    security=API_KEY_SECURITY,
    responses=problems(_READ_REFUSALS),
)
async def list_endpoints(operator: Operator, state: State) -> schemas.EndpointList:
    rows = await endpoints.listed(MerchantWebhookServices.of(state).read_database)
    return schemas.EndpointList([schemas.endpoint(row) for row in rows])


@get(
    _ONE,
    tags=_TAGS,
    summary="One endpoint, without its secret",
    security=API_KEY_SECURITY,
    responses=problems({**_READ_REFUSALS, **_NOT_FOUND}),
)
async def read_endpoint(
    endpoint_id: FromPath[str], operator: Operator, state: State
) -> schemas.Endpoint:
    database = MerchantWebhookServices.of(state).read_database
    return schemas.endpoint(await endpoints.read(database, endpoint_id))


@delete(
    _ONE,
    tags=_TAGS,
    summary="Remove an endpoint: nothing more is sent to it",
    description="Its deliveries still due and its delivery log go with it. Audited as "
    "`endpoints.remove`.",
    security=API_KEY_SECURITY,
    opt={AUDITED_AS: Action.ENDPOINTS_REMOVE},
    responses=problems({400: "Not a valid request.", **_CHANGE_REFUSALS, **_NOT_FOUND}),
)
async def remove_endpoint(
    endpoint_id: FromPath[str], operator: Operator, request: Request[Any, Any, Any], state: State
) -> None:
    database = MerchantWebhookServices.of(state).database
    async with route_audit(request, database, operator) as audit:
        await endpoints.remove(database, audit, endpoint_id)


@post(
    _ONE + "/rotate-secret",
    status_code=200,
    tags=_TAGS,
    summary="A new signing secret; the previous one keeps signing for 24 h",
    description="While both sign, `webhook-signature` carries two signatures. Audited as "
    "`endpoints.rotate`.",
    security=API_KEY_SECURITY,
    opt={AUDITED_AS: Action.ENDPOINTS_ROTATE},
    responses=problems({400: "Not a valid request.", **_CHANGE_REFUSALS, **_NOT_FOUND}),
)
async def rotate_secret(
    endpoint_id: FromPath[str], operator: Operator, request: Request[Any, Any, Any], state: State
) -> schemas.RotatedSecret:
    database = MerchantWebhookServices.of(state).database
    async with route_audit(request, database, operator) as audit:
        return schemas.RotatedSecret(await endpoints.rotate(database, audit, endpoint_id))


@post(
    _ONE + "/enable",
    status_code=200,
    tags=_TAGS,
    summary="Enable an endpoint again, after it was disabled for failing",
    description="Audited as `endpoints.enable`.",
    security=API_KEY_SECURITY,
    opt={AUDITED_AS: Action.ENDPOINTS_ENABLE},
    responses=problems({400: "Not a valid request.", **_CHANGE_REFUSALS, **_NOT_FOUND}),
)
async def enable_endpoint(
    endpoint_id: FromPath[str], operator: Operator, request: Request[Any, Any, Any], state: State
) -> schemas.Endpoint:
    database = MerchantWebhookServices.of(state).database
    async with route_audit(request, database, operator) as audit:
        return schemas.endpoint(await endpoints.enable(database, audit, endpoint_id))


@get(
    _ONE + "/deliveries",
    tags=_TAGS,
    summary="The endpoint's delivery log, newest attempt first",
    security=API_KEY_SECURITY,
    responses=problems({400: "A bad limit.", **_READ_REFUSALS, **_NOT_FOUND}),
)
async def list_deliveries(
    endpoint_id: FromPath[str], operator: Operator, state: State, limit: PageLimit = 50
) -> schemas.AttemptList:
    database = MerchantWebhookServices.of(state).read_database
    rows = await endpoints.attempts(database, endpoint_id, limit)
    return schemas.AttemptList([schemas.attempt(row) for row in rows])


routes = [
    add_endpoint,
    list_endpoints,
    read_endpoint,
    remove_endpoint,
    rotate_secret,
    enable_endpoint,
    list_deliveries,
]
