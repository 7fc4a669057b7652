"""The baseline for sign-in: a nonce INSERT, then an EOA recovery and a nonce UPDATE.

- nonce: a random nonce, one INSERT, the EIP-4361 message by string formatting;
- verify: the nonce and address read by regular expression (no EIP-4361 grammar), the
  signer recovered with eth-account (the same library and cost as the service's), one
  UPDATE that spends the nonce, a JWT signed with PyJWT.

No domain, chain or time checks beyond the UPDATE's, no ORM, no logging, no metrics.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import msgspec
from eth_account import Account
from eth_account.messages import encode_defunct
from litestar import post
from litestar.exceptions import NotAuthorizedException

from bench.baseline_pool import pool

JWT_SECRET = os.environ.get("JWT_SECRET", "")
MESSAGE = (
    "localhost:8000 wants you to sign in with your Ethereum account:\n{wallet}\n\n"
    "Sign in to buy MUSD with onramp.\n\nURI: http://localhost:8000\nVersion: 1\n"
    "Chain ID: 31611\nNonce: {nonce}\nIssued At: {issued}\nExpiration Time: {expires}"
)
_NONCE = re.compile(r"^Nonce: (\w+)$", re.MULTILINE)


class NonceBody(msgspec.Struct, rename="camel"):
    wallet_address: str


class VerifyBody(msgspec.Struct):
    message: str
    signature: str


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@post("/api/v1/auth/nonce", status_code=200)
async def issue_nonce(data: NonceBody) -> dict[str, Any]:
    nonce = secrets.token_hex(12)
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(minutes=5)
    async with pool.connection() as connection:
        await connection.execute(
            "INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at)"
            " VALUES (%s, %s, %s, %s)",
            (nonce, data.wallet_address, now, expires),
        )
    message = MESSAGE.format(
        wallet=data.wallet_address, nonce=nonce, issued=_iso(now), expires=_iso(expires)
    )
    return {"nonce": nonce, "message": message, "expiresAt": expires}


@post("/api/v1/auth/verify", status_code=200)
async def verify(data: VerifyBody) -> dict[str, Any]:
    found = _NONCE.search(data.message)
    wallet = data.message.split("\n", 2)[1]
    signer = Account.recover_message(
        encode_defunct(text=data.message), signature=bytes.fromhex(data.signature[2:])
    )
    if found is None or signer != wallet:
        raise NotAuthorizedException
    now = datetime.now(UTC)
    async with pool.connection() as connection:
        spent = await connection.execute(
            "UPDATE auth_nonces SET used_at = %s WHERE nonce = %s AND wallet_address = %s"
            " AND used_at IS NULL AND expires_at > %s",
            (now, found[1], wallet, now),
        )
    if spent.rowcount != 1:
        raise NotAuthorizedException
    expires = now + timedelta(hours=1)
    token = jwt.encode({"sub": wallet, "exp": expires, "iat": now}, JWT_SECRET, "HS256")
    return {"token": token, "walletAddress": wallet, "expiresAt": expires}


routes = [issue_nonce, verify]
