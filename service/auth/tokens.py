"""Short-lived wallet tokens: JWTs through Litestar's security module, bound to one wallet."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token

from service.errors import Unauthorized

ALGORITHM = "HS256"
AUDIENCE = "onramp"


@dataclass(frozen=True)
class WalletToken:
    encoded: str
    wallet_address: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str
    ttl: timedelta

    def issue(self, wallet_address: str, now: datetime) -> WalletToken:
        # JWT times are whole seconds; round down so expiresAt never outlives the token.
        expires_at = (now + self.ttl).replace(microsecond=0)
        token = Token(
            exp=expires_at,
            sub=wallet_address,
            iat=now,
            iss=self.issuer,
            aud=AUDIENCE,
            jti=secrets.token_hex(16),
        )
        return WalletToken(token.encode(self.secret, ALGORITHM), wallet_address, expires_at)

    def read(self, encoded: str) -> WalletToken:
        try:
            token = Token.decode(
                encoded,
                self.secret,
                ALGORITHM,
                audience=AUDIENCE,
                issuer=self.issuer,
                require_claims=["exp", "sub", "iat"],
            )
        except NotAuthorizedException as error:
            raise Unauthorized("The token is invalid or has expired.") from error
        return WalletToken(encoded, token.sub, token.exp.astimezone(UTC))
