"""Who is calling: a wallet (Bearer token) or an operator (X-API-Key), never both."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from pydantic import SecretStr

from service.auth.tokens import TokenIssuer, WalletToken
from service.errors import Forbidden, Unauthorized

BEARER_SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]
API_KEY_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]

# Route parameters: `wallet_token: Wallet` for wallet routes, `operator: Operator` for ops routes.
Wallet = NamedDependency[WalletToken]
Operator = NamedDependency[str]


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token of the request's first Authorization header, if it is a Bearer one.

    Read from the raw ASGI headers (lower-case names, as the server hands them over):
    `request.headers` would build a header map of every header on each request.
    """
    header = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
    scheme, _, value = header.decode("latin-1").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def wallet_provider(tokens: TokenIssuer) -> Callable[[Request[Any, Any, Any]], WalletToken]:
    """A dependency giving the wallet a request's Bearer token was issued to.

    The issuer is bound here rather than asked for as a dependency of its own: each
    dependency Litestar resolves costs a few microseconds of every wallet request.
    """

    def provide_wallet(request: Request[Any, Any, Any]) -> WalletToken:
        """The wallet a Bearer token was issued to; 401 without a valid one."""
        token = bearer_token(request)
        if token is None:
            raise Unauthorized("Sign in and send the token as 'Authorization: Bearer <token>'.")
        return tokens.read(token)

    return provide_wallet


def operator_guard(api_keys: list[SecretStr]) -> Any:
    """A dependency admitting only a request with one of `api_keys` in X-API-Key."""
    digests = [hashlib.sha256(key.get_secret_value().encode()).digest() for key in api_keys]

    async def provide_operator(request: Request[Any, Any, Any]) -> str:
        presented = request.headers.get("x-api-key")
        if presented is None:
            if bearer_token(request) is not None:
                raise Forbidden("Operator routes take an API key, not a wallet token.")
            raise Unauthorized("Send an operator key as 'X-API-Key'.")
        digest = hashlib.sha256(presented.encode()).digest()
        # Compare against every key, each in constant time, so timing reveals nothing.
        matches = [hmac.compare_digest(digest, known) for known in digests]
        if not any(matches):
            raise Forbidden("The API key is not valid.")
        return digest.hex()[:12]

    return provide_operator
