"""What the stand-in sells: Stripe's own public networks, and every network and token of
the service's registry (contracts/tokens.json), so that a registry entry is for sale
here as soon as it is added, with no code."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from service import registry

# What Stripe itself sells on its public networks, and Stripe's key for each network in
# `wallet_addresses[...]` (its own names: `base_network` for Base; `wallet_addresses[base]`
# is refused). The token registry's networks and tokens (contracts/tokens.json) are
# sold too, under the registry's keys: what the service sells, the stand-in sells.
STRIPE_DESTINATIONS: dict[str, frozenset[str]] = {
    "ethereum": frozenset({"eth", "usdc"}),
    "base": frozenset({"eth", "usdc"}),
    "polygon": frozenset({"pol", "usdc"}),
    "avalanche": frozenset({"avax", "usdc"}),
    "solana": frozenset({"sol", "usdc"}),
    "bitcoin": frozenset({"btc"}),
}
STRIPE_WALLET_KEYS: dict[str, str] = {
    "ethereum": "ethereum",
    "base": "base_network",
    "polygon": "polygon",
    "avalanche": "avalanche",
    "solana": "solana",
    "bitcoin": "bitcoin",
}


@dataclass(frozen=True)
class Offer:
    """What the stand-in sells: currencies by network, and each network's wallet key."""

    destinations: dict[str, frozenset[str]]
    wallet_keys: dict[str, str]

    def sells(self, currency: str) -> bool:
        return any(currency in currencies for currencies in self.destinations.values())


def offer() -> Offer:
    return _offer(registry.tokens())


@cache
def _offer(tokens: tuple[registry.Token, ...]) -> Offer:
    destinations = dict(STRIPE_DESTINATIONS)
    wallet_keys = dict(STRIPE_WALLET_KEYS)
    for token in tokens:
        destinations[token.network] = destinations.get(token.network, frozenset()) | {
            token.currency
        }
        wallet_keys.setdefault(token.network, token.stripe_wallet_key)
    return Offer(destinations, wallet_keys)
