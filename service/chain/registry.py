"""The token registry (`contracts/tokens.json`): which contract a (network, currency) is.

Adding a network or a token is an entry in that file, not code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from service.resources import resource_dir


@dataclass(frozen=True)
class Token:
    network: str
    currency: str
    environment: str
    chain_id: int
    address: str
    decimals: int
    confirmations: int
    rpc_urls: tuple[str, ...]
    verified: bool


@cache
def tokens() -> tuple[Token, ...]:
    raw = json.loads((resource_dir("contracts") / "tokens.json").read_text())
    return tuple(
        Token(
            network=entry["network"],
            currency=entry["currency"],
            environment=entry["environment"],
            chain_id=int(entry["chainId"]),
            address=entry["address"],
            decimals=int(entry["decimals"]),
            confirmations=int(entry["confirmations"]),
            rpc_urls=tuple(entry["rpcUrls"]),
            verified=bool(entry["verified"]),
        )
        for entry in raw["tokens"]
    )


def networks() -> frozenset[str]:
    return frozenset(token.network for token in tokens())


def currencies_on(network: str) -> frozenset[str]:
    return frozenset(token.currency for token in tokens() if token.network == network)


def find_token(network: str, currency: str, chain_id: int) -> Token | None:
    for token in tokens():
        if (token.network, token.currency, token.chain_id) == (network, currency, chain_id):
            return token
    return None
