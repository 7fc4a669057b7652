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
    # Blocks before a delivery can no longer be reorganised away (1: final at once).
    finality_depth: int
    # Stripe's own name for the network in `wallet_addresses[...]` (`base_network` for Base).
    stripe_wallet_key: str
    # The chain's block explorer: `{explorer_url}/tx/{hash}` shows a transaction.
    explorer_url: str | None
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
            finality_depth=int(entry["finalityDepth"]),
            stripe_wallet_key=entry["stripeWalletKey"],
            explorer_url=entry.get("explorerUrl"),
            rpc_urls=tuple(entry["rpcUrls"]),
            verified=bool(entry["verified"]),
        )
        for entry in raw["tokens"]
    )


def networks() -> frozenset[str]:
    return frozenset(token.network for token in tokens())


def default_chain_id(network: str) -> int | None:
    """The chain a network means when no `<NETWORK>_CHAIN_ID` says otherwise: its
    mainnet, or its only chain."""
    chains = {token.chain_id: token.environment for token in tokens() if token.network == network}
    mainnets = [chain_id for chain_id, environment in chains.items() if environment == "mainnet"]
    if len(mainnets) == 1:
        return mainnets[0]
    return next(iter(chains)) if len(chains) == 1 else None


def tokens_on(network: str, chain_id: int) -> tuple[Token, ...]:
    return tuple(t for t in tokens() if (t.network, t.chain_id) == (network, chain_id))
