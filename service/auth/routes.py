"""POST /api/v1/auth/nonce, POST /api/v1/auth/verify and GET /api/v1/auth/me."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from service.auth import rules
from service.auth.guards import BEARER_SECURITY, Wallet
from service.auth.provider import SignInServices
from service.auth.schemas import (
    NonceIssued,
    NonceRequest,
    SignedInWallet,
    SignInRequest,
    TokenIssued,
)
from service.openapi import (
    DATABASE_UNAVAILABLE,
    NOT_SIGNED_IN,
    RATE_LIMITED,
    TOO_LARGE,
    problems,
)
from service.ratelimit import client_ip, client_network

BODY_LIMIT = 16 * 1024


@post(
    "/api/v1/auth/nonce",
    status_code=200,
    tags=["auth"],
    summary="Start a sign-in: a nonce and the message to sign",
    description=(
        "An Ethereum address gets an EIP-4361 message; a Bitcoin address (P2PKH,"
        " P2SH-P2WPKH or P2WPKH) gets Mezo's Sign-In With Wallet message, and signs in"
        " to its Mezo Passport account."
    ),
    request_max_body_size=BODY_LIMIT,
    responses=problems(
        {
            400: "Not a valid request or wallet address (`invalid_wallet_address`), or a"
            " Bitcoin address of a kind that cannot sign in (`unsupported_address_type`).",
            413: TOO_LARGE,
            429: RATE_LIMITED,
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def issue_nonce(
    data: JSONBody[NonceRequest],
    request: Request[Any, Any, Any],
    state: State,
) -> NonceIssued:
    found = SignInServices.of(state)
    sign_in, rate_limiter = found.sign_in, found.rate_limiter
    wallet = rules.signing_wallet(data.wallet_address, sign_in.audience)
    # Charged to the client only: naming a wallet proves nothing about its key, so a
    # budget per wallet would let anyone lock its owner out.
    await rate_limiter.spend("nonce", ip=client_ip(request))
    issued = await sign_in.issue_nonce(wallet, client_network(client_ip(request)))
    return NonceIssued(nonce=issued.nonce, message=issued.message, expires_at=issued.expires_at)


@post(
    "/api/v1/auth/verify",
    status_code=200,
    tags=["auth"],
    summary="Finish a sign-in: a signed message for a wallet token",
    request_max_body_size=BODY_LIMIT,
    responses=problems(
        {
            400: "Not a valid request, or the message's Bitcoin address is of a kind that"
            " cannot sign in (`unsupported_address_type`).",
            401: "The sign-in is refused; `code` says why (`nonce_used`, `domain_mismatch`, …).",
            413: TOO_LARGE,
            429: RATE_LIMITED,
            503: "The database, or for a contract wallet the chain, is not reachable.",
        }
    ),
)
async def verify_sign_in(
    data: JSONBody[SignInRequest],
    request: Request[Any, Any, Any],
    state: State,
) -> TokenIssued:
    found = SignInServices.of(state)
    sign_in, rate_limiter = found.sign_in, found.rate_limiter
    await rate_limiter.spend("verify", ip=client_ip(request))
    message = rules.parse_message(data.message)  # and its address checked
    token = await sign_in.verify(message, data.message, data.signature, client_ip(request))
    return TokenIssued(
        token=token.encoded,
        wallet_address=token.wallet_address,
        expires_at=token.expires_at,
        bitcoin_address=token.bitcoin_address,
    )


@get(
    "/api/v1/auth/me",
    tags=["auth"],
    summary="The wallet the token belongs to",
    security=BEARER_SECURITY,
    responses=problems({401: NOT_SIGNED_IN}),
)
async def signed_in_wallet(wallet_token: Wallet) -> SignedInWallet:
    return SignedInWallet(
        wallet_address=wallet_token.wallet_address,
        expires_at=wallet_token.expires_at,
        bitcoin_address=wallet_token.bitcoin_address,
    )


routes = [issue_nonce, verify_sign_in, signed_in_wallet]
