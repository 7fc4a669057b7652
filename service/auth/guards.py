"""Who is calling: a wallet (Bearer token) or an operator (X-API-Key), never both."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from service.auth.tokens import TokenIssuer, WalletToken
from service.errors import Forbidden, InsufficientScope, OnrampError, Unauthorized
from service.ratelimit import RateLimiter, client_ip
from service.settings import OperatorKey

BEARER_SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]
API_KEY_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]


@dataclass(frozen=True, slots=True)
class OperatorIdentity:
    """Whose key a request came with: its name (what the audit trail records) and
    whether it may change things or only read."""

    name: str
    may_write: bool


# Route parameters: `wallet_token: Wallet` for wallet routes, `operator: Operator` for ops routes.
Wallet = NamedDependency[WalletToken]
Operator = NamedDependency[OperatorIdentity]


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


# What a read-only key may call: the operator routes that only read.
READ_METHODS = frozenset({"GET", "HEAD"})
# The budget wrong or missing keys spend, per client network (ADMIN_AUTH_FAILURES_PER_MINUTE).
KEY_FAILURES = "failed operator key"
# Told of a read-only key refused a route (the audit trail's `refused` row); handed down
# by the app, as auth sits below the capability that keeps the trail.
Refusal = Callable[[Request[Any, Any, Any], OperatorIdentity], Awaitable[None]]


def operator_guard(keys: Sequence[OperatorKey], failures: RateLimiter, refused: Refusal) -> Any:
    """A dependency admitting only a request with one of `keys` in X-API-Key, giving
    whose it is. A client network that sent `failures`' budget of wrong or missing keys
    this minute is refused (429) whatever key it sends until the minute ends; right keys
    spend nothing. A read-only key is refused (403 `insufficient_scope`) any route that
    is not a read."""
    known = [
        (
            hashlib.sha256(key.secret.get_secret_value().encode()).digest(),
            OperatorIdentity(key.name, key.may_write),
        )
        for key in keys
    ]

    async def provide_operator(request: Request[Any, Any, Any]) -> OperatorIdentity:
        client = client_ip(request)
        await failures.refuse_when_spent(KEY_FAILURES, ip=client)
        try:
            operator = _identify(request, known)
        except OnrampError:
            await failures.count(KEY_FAILURES, ip=client)
            raise
        if not operator.may_write and request.method not in READ_METHODS:
            await refused(request, operator)
            raise InsufficientScope("This operator key may only read; this route changes things.")
        return operator

    return provide_operator


def _identify(
    request: Request[Any, Any, Any], known: list[tuple[bytes, OperatorIdentity]]
) -> OperatorIdentity:
    presented = request.headers.get("x-api-key")
    if presented is None:
        if bearer_token(request) is not None:
            raise Forbidden("Operator routes take an API key, not a wallet token.")
        raise Unauthorized("Send an operator key as 'X-API-Key'.")
    digest = hashlib.sha256(presented.encode()).digest()
    # Compare against every key, each in constant time, so timing reveals nothing.
    matches = [hmac.compare_digest(digest, known_digest) for known_digest, _ in known]
    if not any(matches):
        raise Forbidden("The API key is not valid.")
    return known[matches.index(True)][1]
