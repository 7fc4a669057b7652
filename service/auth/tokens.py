"""Short-lived wallet tokens: JWTs through Litestar's security module, bound to one wallet."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token

from service.errors import Unauthorized

ALGORITHM = "HS256"
AUDIENCE = "onramp"
BITCOIN_CLAIM = "btc"
# Tokens verified recently, per process: a dApp sends the same token with every call.
VERIFIED_TOKENS_KEPT = 4096


@dataclass(frozen=True)
class WalletToken:
    encoded: str
    wallet_address: str
    expires_at: datetime
    # The Bitcoin wallet whose key signed in, when `wallet_address` is its Mezo account.
    bitcoin_address: str | None = None


@dataclass(frozen=True)
class TokenIssuer:
    """Signs with `secret`; verifies with it and with `previous_secrets`, so that tokens
    signed before a rotation of `JWT_SECRET` stay valid until they expire."""

    secret: str
    issuer: str
    ttl: timedelta
    previous_secrets: tuple[str, ...] = ()
    # encoded token -> what it said, for tokens whose signature and claims were checked.
    _verified: dict[str, WalletToken] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def issue(
        self, wallet_address: str, now: datetime, bitcoin_address: str | None = None
    ) -> WalletToken:
        # JWT times are whole seconds; round down so expiresAt never outlives the token.
        expires_at = (now + self.ttl).replace(microsecond=0)
        # PyJWT directly: the same token Litestar's `Token` would write, for a fraction of
        # the cost of building and validating that object on every sign-in.
        claims = {
            "exp": int(expires_at.timestamp()),
            "iat": int(now.timestamp()),
            "sub": wallet_address,
            "iss": self.issuer,
            "aud": AUDIENCE,
            "jti": secrets.token_hex(16),
        }
        if bitcoin_address is not None:
            claims[BITCOIN_CLAIM] = bitcoin_address
        encoded = jwt.encode(claims, self.secret, algorithm=ALGORITHM)
        return WalletToken(encoded, wallet_address, expires_at, bitcoin_address)

    def read(self, encoded: str) -> WalletToken:
        """The wallet token `encoded` carries; 401 unless it is valid now.

        A token is a pure function of its bytes, so a token already verified needs only
        its expiry checked again: decoding and verifying one cost about 50 µs of the
        read routes' few hundred (bench/README.md). Tokens cannot be revoked, so nothing
        else can change about one.
        """
        known = self._verified.get(encoded)
        if known is not None and known.expires_at > datetime.now(UTC):
            return known
        token = self._decode(encoded)
        bitcoin_address = token.extras.get(BITCOIN_CLAIM)
        verified = WalletToken(
            encoded,
            token.sub,
            token.exp.astimezone(UTC),
            bitcoin_address if isinstance(bitcoin_address, str) else None,
        )
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[encoded] = verified
        return verified

    def _decode(self, encoded: str) -> Token:
        """The token checked against the signing secret first (nearly every token), then
        against the previous ones; only a wrong signature is worth another secret."""
        for secret in (self.secret, *self.previous_secrets):
            try:
                return Token.decode(
                    encoded,
                    secret,
                    ALGORITHM,
                    audience=AUDIENCE,
                    issuer=self.issuer,
                    require_claims=["exp", "sub", "iat"],
                )
            except NotAuthorizedException as error:
                if not isinstance(error.__cause__, jwt.InvalidSignatureError):
                    raise Unauthorized("The token is invalid or has expired.") from error
        raise Unauthorized("The token is invalid or has expired.")
