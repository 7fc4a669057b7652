"""Short-lived wallet tokens: JWTs (PyJWT) bound to one wallet.

Replicas' clocks are never quite together: a token one replica issued may reach another
whose clock is behind, and look issued in the future there. Its `iat` (and an `nbf`)
may lie up to the issuer's leeway (JWT_LEEWAY_SECONDS) ahead of this clock. Its expiry
has no leeway: an expired token is refused at once, here as on every replica.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from service.columns import is_unix_seconds
from service.errors import Unauthorized

ALGORITHM = "HS256"
AUDIENCE = "onramp"
BITCOIN_CLAIM = "btc"
# Tokens verified recently, per process: a dApp sends the same token with every call.
VERIFIED_TOKENS_KEPT = 4096


class _CheckedHMAC(HMACAlgorithm):
    """PyJWT's HS256, checking each secret once rather than with every token: the
    check (is this secret an asymmetric key in disguise?) tries to load it as a DER key
    and a certificate, a quarter of a token's signing cost."""

    @lru_cache(maxsize=8)  # noqa: B019 - one instance for the process, a few secrets
    def prepare_key(self, key: str | bytes) -> bytes:
        return super().prepare_key(key)


_SIGNER = jwt.PyJWS()
_SIGNER.unregister_algorithm(ALGORITHM)
_SIGNER.register_algorithm(ALGORITHM, _CheckedHMAC(HMACAlgorithm.SHA256))


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
    # How far ahead of this clock a token's `iat` or `nbf` may be (JWT_LEEWAY_SECONDS).
    leeway: timedelta = timedelta(0)
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
        # the cost of building and validating that object on every sign-in; the claims
        # as `jwt.encode` writes them.
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
        payload = json.dumps(claims, separators=(",", ":")).encode()
        encoded = _SIGNER.encode(payload, self.secret, algorithm=ALGORITHM)
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
        claims = self._decode(encoded)
        bitcoin_address = claims.get(BITCOIN_CLAIM)
        verified = WalletToken(
            encoded,
            claims["sub"],
            datetime.fromtimestamp(claims["exp"], UTC),
            bitcoin_address if isinstance(bitcoin_address, str) else None,
        )
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[encoded] = verified
        return verified

    def _decode(self, encoded: str) -> dict[str, Any]:
        """The token's claims, checked against the signing secret first (nearly every
        token), then against the previous ones; only a wrong signature is worth another
        secret. PyJWT's own `leeway` would stretch the expiry too, so PyJWT checks the
        expiry exactly and `_not_early` the times with the leeway."""
        for secret in (self.secret, *self.previous_secrets):
            try:
                claims: dict[str, Any] = jwt.decode(
                    encoded,
                    secret,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    issuer=self.issuer,
                    options={
                        "require": ["exp", "sub", "iat"],
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                    leeway=0,
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as error:
                raise Unauthorized("The token is invalid or has expired.") from error
            if not self._not_early(claims) or not _well_formed(claims):
                raise Unauthorized("The token is invalid or has expired.")
            return claims
        raise Unauthorized("The token is invalid or has expired.")

    def _not_early(self, claims: dict[str, Any]) -> bool:
        """`iat` and `nbf` no further ahead of this clock than the leeway."""
        latest = datetime.now(UTC).timestamp() + self.leeway.total_seconds()
        times = [claims["iat"], *([claims["nbf"]] if "nbf" in claims else [])]
        return all(is_unix_seconds(moment) and moment <= latest for moment in times)


def _well_formed(claims: dict[str, Any]) -> bool:
    subject = claims.get("sub")
    return isinstance(subject, str) and bool(subject) and is_unix_seconds(claims.get("exp"))
