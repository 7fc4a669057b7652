"""The JSON of the sign-in routes (camelCase on the wire, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# Real sign-in messages are a few hundred characters; the EIP-4361 grammar parser is
# slow on long input (about 0.2 s at this cap, seconds at 4 KiB), so the cap is tight.
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=1536)]
Signature = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
Address = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Schema(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class NonceRequest(_Schema):
    wallet_address: Address


class NonceIssued(_Schema):
    nonce: str
    message: str
    expires_at: datetime


class SignInRequest(_Schema):
    message: Message
    signature: Signature


class TokenIssued(_Schema):
    token: str
    wallet_address: str
    expires_at: datetime
    # Set when a Bitcoin wallet signed in; `wallet_address` is then its Mezo account.
    bitcoin_address: str | None = None


class SignedInWallet(_Schema):
    wallet_address: str
    expires_at: datetime
    bitcoin_address: str | None = None
