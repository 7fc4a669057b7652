"""The dApp's session routes (Bearer token) and the operators' (X-API-Key)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import ResponseHeader, State
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from service.auth.guards import API_KEY_SECURITY, BEARER_SECURITY, Operator, Wallet
from service.chain.addresses import wallet_parameter
from service.errors import Forbidden
from service.onramp import queries, schemas
from service.onramp.provider import OnrampServices
from service.onramp.quotes import check_priced_amount
from service.onramp.rules import check_create_request, check_quote_request
from service.openapi import (
    DATABASE_UNAVAILABLE,
    NOT_SIGNED_IN,
    OPERATOR_REFUSALS,
    RATE_LIMITED,
    TOO_LARGE,
    problems,
)
from service.pages import PageLimit
from service.ratelimit import client_ip

BODY_LIMIT = 16 * 1024
IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe key, scoped to the wallet and kept 24 hours.",
    ),
]


@post(
    "/api/v1/onramp/sessions",
    status_code=201,
    tags=["onramp"],
    summary="Create an onramp session for the signed-in wallet",
    security=BEARER_SECURITY,
    request_max_body_size=BODY_LIMIT,
    response_headers=[
        ResponseHeader(
            name="Idempotent-Replayed",
            value="true",
            description="Present on the replay of a finished request with the same key.",
            documentation_only=True,
            required=False,
        )
    ],
    responses=problems(
        {
            400: "Not a valid request, or a destination this service cannot verify on "
            "chain; nothing was sent to Stripe (`invalid_amount`, `unsupported_destination`, …).",
            401: NOT_SIGNED_IN,
            403: "`walletAddress` is not the signed-in wallet (`wallet_mismatch`).",
            409: "A request with this Idempotency-Key is still in flight.",
            413: TOO_LARGE,
            422: "Stripe refused the session (`stripe_error`, with `stripeCode`), or the "
            "Idempotency-Key was used with another body (`idempotency_key_reused`).",
            429: RATE_LIMITED,
            502: "Stripe is unreachable or failing (`stripe_unavailable`); retry with the key.",
            503: "Stripe is not configured (`stripe_not_configured`) or the database is "
            "not reachable.",
        }
    ),
)
async def create_session(
    data: JSONBody[schemas.SessionCreate],
    request: Request[Any, Any, Any],
    wallet_token: Wallet,
    state: State,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[schemas.SessionPublic]:
    found = OnrampServices.of(state)
    await found.rate_limiter.spend(
        "create", ip=client_ip(request), wallet=wallet_token.wallet_address
    )
    session_request = check_create_request(
        data.wallet_address,
        data.source_amount,
        data.destination_amount,
        data.source_currency,
        data.destination_currency,
        data.destination_network,
        found.settings,
        found.destinations,
    )
    if session_request.wallet_address != wallet_token.wallet_address:
        raise Forbidden(
            "Sessions can only be created for the signed-in wallet.", code="wallet_mismatch"
        )
    await check_priced_amount(found.quotes, session_request, found.settings)
    created = await found.creation.create_session(
        session_request, idempotency_key, client_ip(request)
    )
    headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
    return Response(created.session, status_code=201, headers=headers)


@get(
    "/api/v1/onramp/quotes",
    tags=["onramp"],
    summary="What an amount costs or buys now, before creating a session",
    description="Give `sourceAmount` (what to spend) or `destinationAmount` (what to "
    "receive), not both. Stripe's estimate, kept for a few seconds per parameter set.",
    security=BEARER_SECURITY,
    responses=problems(
        {
            400: "Not a valid amount, or a destination this service does not sell.",
            401: NOT_SIGNED_IN,
            422: "Stripe refused the quote (`stripe_error`, with `stripeCode`).",
            429: RATE_LIMITED,
            502: "Stripe is unreachable or failing (`stripe_unavailable`).",
            503: "Stripe is not configured (`stripe_not_configured`).",
        }
    ),
)
async def quote(
    request: Request[Any, Any, Any],
    wallet_token: Wallet,
    state: State,
    source_amount: Annotated[str | None, QueryParameter(name="sourceAmount")] = None,
    destination_amount: Annotated[str | None, QueryParameter(name="destinationAmount")] = None,
    source_currency: Annotated[str | None, QueryParameter(name="sourceCurrency")] = None,
    destination_network: Annotated[str | None, QueryParameter(name="destinationNetwork")] = None,
    destination_currency: Annotated[str | None, QueryParameter(name="destinationCurrency")] = None,
) -> schemas.Quote:
    found = OnrampServices.of(state)
    await found.rate_limiter.spend(
        "quote", ip=client_ip(request), wallet=wallet_token.wallet_address
    )
    asked = check_quote_request(
        source_amount,
        destination_amount,
        source_currency,
        destination_network,
        destination_currency,
        found.settings,
        found.destinations,
    )
    return await found.quotes.quote(asked)


@get(
    "/api/v1/onramp/sessions/{session_id:str}",
    tags=["onramp"],
    summary="One of the signed-in wallet's sessions",
    security=BEARER_SECURITY,
    responses=problems(
        {
            400: "Not a valid request.",
            401: NOT_SIGNED_IN,
            404: "No such session for this wallet; another wallet's is not found either.",
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def read_session(
    session_id: FromPath[str], wallet_token: Wallet, state: State
) -> schemas.SessionPublic:
    return await queries.read_owned(
        OnrampServices.of(state).database, session_id, wallet_token.wallet_address
    )


@get(
    "/api/v1/onramp/sessions",
    tags=["onramp"],
    summary="The signed-in wallet's sessions, newest first",
    security=BEARER_SECURITY,
    responses=problems(
        {
            400: "An unknown status, a cursor this service did not hand out, or a bad limit.",
            401: NOT_SIGNED_IN,
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def list_wallet_sessions(
    wallet_token: Wallet,
    state: State,
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = 20,
) -> schemas.SessionPage:
    page = await queries.page(
        OnrampServices.of(state).read_database,
        wallet_address=wallet_token.wallet_address,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return schemas.SessionPage([schemas.public(s) for s in page.sessions], page.next_cursor)


@get(
    "/api/v1/admin/sessions",
    tags=["operations"],
    summary="All sessions, for operators (no client secrets)",
    security=API_KEY_SECURITY,
    responses=problems(
        {
            400: "An unknown status, an invalid wallet, a bad cursor or limit.",
            **OPERATOR_REFUSALS,
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def list_all_sessions(
    operator: Operator,
    state: State,
    status: FromQuery[str | None] = None,
    wallet: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = 20,
) -> schemas.SessionSummaryPage:
    page = await queries.page(
        OnrampServices.of(state).read_database,
        wallet_address=wallet_parameter(wallet, "wallet") if wallet is not None else None,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return schemas.SessionSummaryPage([schemas.summary(s) for s in page.sessions], page.next_cursor)


routes = [
    create_session,
    quote,
    read_session,
    list_wallet_sessions,
    list_all_sessions,
]
