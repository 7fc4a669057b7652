"""The JSON of `/api/v1/config`: camelCase, amounts as decimal strings."""

from __future__ import annotations

import msgspec


class _Schema(msgspec.Struct, rename="camel"):
    pass


class DestinationConfig(_Schema):
    network: str
    currency: str
    chain_id: int
    token_address: str
    decimals: int
    confirmations: int


class SignInConfig(_Schema):
    """What an EIP-4361 message for this service must name."""

    domain: str
    uri: str
    chain_id: int


class ClientConfig(_Schema):
    publishable_key: str | None
    stripe_stand_in: bool  # the dApp pays on the stand-in's hosted page, not Stripe's widget
    source_currency: str
    min_source_amount: str
    max_source_amount: str
    default_network: str
    default_currency: str
    destinations: list[DestinationConfig]
    sign_in: SignInConfig
