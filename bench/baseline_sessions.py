"""The baselines for session creation and reads: the irreducible work, with nothing else.

- create: one call to the same Stripe stand-in and one INSERT of the finished session;
  the wallet comes from the body, nothing is authenticated or validated. The call goes
  through stripe-python's client on the service's aiohttp transport, as the service's
  does: the service must use Stripe's SDK, so the SDK's cost is part of the irreducible
  work.
  `/raw/api/v1/onramp/sessions` does the same with a bare aiohttp request instead, to
  show what the SDK itself costs.
- read one / list: the same SELECT as the service's (by id and wallet; the wallet's
  newest 21 for a page of 20), the same JSON shape; the wallet comes from an
  `X-Wallet-Address` header instead of a verified token.

No ORM, no logging, no metrics, no middleware; psycopg's pool (bench/baseline_pool.py).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
import stripe
from litestar import Request, get, post
from litestar.exceptions import NotFoundException

from bench.baseline_pool import pool
from service.onramp.stripe_client import StripeHttp

STRIPE_URL = os.environ.get("BASELINE_STRIPE_URL", "http://127.0.0.1:9")
STRIPE_KEY = os.environ.get("BASELINE_STRIPE_KEY", "")
COLUMNS = (
    "id, stripe_session_id, client_secret, status, wallet_address, source_amount,"
    " source_currency, destination_amount, destination_currency, destination_network,"
    " transaction_hash, delivery_status, delivery_confirmations, delivery_block_number,"
    " delivered_amount, delivery_checked_at, delivery_detail, created_at, updated_at"
)


class CreateBody(msgspec.Struct, rename="camel"):
    wallet_address: str
    source_amount: str


class StripeConnection:
    """Stripe's SDK on the service's own aiohttp transport (the same client, configured
    the same way), and a bare aiohttp session, for the process."""

    sdk_http: StripeHttp | None = None
    sdk: stripe.StripeClient | None = None
    bare: aiohttp.ClientSession | None = None

    @classmethod
    async def open(cls) -> None:
        cls.sdk_http = StripeHttp(timeout_seconds=10)
        cls.sdk = stripe.StripeClient(
            STRIPE_KEY,
            base_addresses={"api": STRIPE_URL},
            max_network_retries=2,
            http_client=cls.sdk_http,
        )
        cls.bare = aiohttp.ClientSession(STRIPE_URL)

    @classmethod
    async def close(cls) -> None:
        if cls.sdk_http is not None:
            await cls.sdk_http.close_async()
        if cls.bare is not None:
            await cls.bare.close()


def _params(data: CreateBody, request: Request[Any, Any, Any], session_id: str) -> dict[str, Any]:
    """The create parameters, in stripe-python's nested form, as the service sends them."""
    return {
        "wallet_addresses": {"mezo": data.wallet_address},
        "lock_wallet_address": True,
        "destination_currency": "musd",
        "destination_network": "mezo",
        "destination_currencies": ["musd"],
        "destination_networks": ["mezo"],
        "source_currency": "usd",
        "source_amount": data.source_amount,
        "customer_ip_address": request.client.host if request.client else "127.0.0.1",
        "metadata": {"onramp_session_id": session_id},
    }


async def _through_sdk(params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    assert StripeConnection.sdk is not None
    response = await StripeConnection.sdk.raw_request_async(
        "post", "/v1/crypto/onramp_sessions", idempotency_key=idempotency_key, **params
    )
    answer: dict[str, Any] = response.data
    return answer


async def _bare(params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    assert StripeConnection.bare is not None
    form = {
        "wallet_addresses[mezo]": params["wallet_addresses"]["mezo"],
        "lock_wallet_address": "true",
        "destination_currency": "musd",
        "destination_network": "mezo",
        "destination_currencies[0]": "musd",
        "destination_networks[0]": "mezo",
        "source_currency": "usd",
        "source_amount": params["source_amount"],
        "customer_ip_address": params["customer_ip_address"],
        "metadata[onramp_session_id]": params["metadata"]["onramp_session_id"],
    }
    async with StripeConnection.bare.post(
        "/v1/crypto/onramp_sessions",
        data=urlencode(form),
        headers={
            "Authorization": f"Bearer {STRIPE_KEY}",
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    ) as answer:
        created: dict[str, Any] = await answer.json()
        return created


async def _create(
    data: CreateBody,
    request: Request[Any, Any, Any],
    call: Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    session_id = "ors_" + secrets.token_hex(13).upper()
    stripe_session = await call(_params(data, request, session_id), f"onramp-create-{session_id}")
    now = datetime.now(UTC)
    row = (
        session_id,
        stripe_session["id"],
        stripe_session["client_secret"],
        stripe_session["status"],
        data.wallet_address,
        data.source_amount,
        "usd",
        None,
        "musd",
        "mezo",
        None,
        "not_started",
        0,
        None,
        None,
        None,
        None,
        now,
        now,
    )
    async with pool.connection() as connection:
        await connection.execute(
            f"INSERT INTO onramp_sessions ({COLUMNS}, livemode)"  # noqa: S608 - constants
            f" VALUES ({', '.join(['%s'] * len(row))}, false)",
            row,
        )
    return _public(row)


@post("/api/v1/onramp/sessions", status_code=201)
async def create_session(data: CreateBody, request: Request[Any, Any, Any]) -> dict[str, Any]:
    return await _create(data, request, _through_sdk)


@post("/raw/api/v1/onramp/sessions", status_code=201)
async def create_session_bare(data: CreateBody, request: Request[Any, Any, Any]) -> dict[str, Any]:
    return await _create(data, request, _bare)


@get("/api/v1/onramp/sessions/{session_id:str}")
async def read_session(session_id: str, request: Request[Any, Any, Any]) -> dict[str, Any]:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            f"SELECT {COLUMNS} FROM onramp_sessions"  # noqa: S608 - constants
            " WHERE id = %s AND stripe_session_id IS NOT NULL AND wallet_address = %s",
            (session_id, request.headers["x-wallet-address"]),
        )
        row = await cursor.fetchone()
    if row is None:
        raise NotFoundException
    return _public(row)


@get("/api/v1/onramp/sessions")
async def list_sessions(request: Request[Any, Any, Any]) -> dict[str, Any]:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            f"SELECT {COLUMNS} FROM onramp_sessions"  # noqa: S608 - constants
            " WHERE stripe_session_id IS NOT NULL AND wallet_address = %s"
            " ORDER BY id DESC LIMIT 21",
            (request.headers["x-wallet-address"],),
        )
        rows = await cursor.fetchall()
    return {
        "items": [_public(row) for row in rows[:20]],
        "nextCursor": rows[19][0] if len(rows) > 20 else None,
    }


def _public(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "stripeSessionId": row[1],
        "clientSecret": row[2],
        "status": row[3],
        "walletAddress": row[4],
        "sourceAmount": row[5],
        "sourceCurrency": row[6],
        "destinationAmount": row[7],
        "destinationCurrency": row[8],
        "destinationNetwork": row[9],
        "transactionHash": row[10],
        "delivery": {
            "status": row[11],
            "confirmations": row[12],
            "blockNumber": row[13],
            "deliveredAmount": row[14],
            "checkedAt": row[15],
            "detail": row[16],
        },
        "createdAt": row[17],
        "updatedAt": row[18],
    }


routes = [create_session, create_session_bare, read_session, list_sessions]
