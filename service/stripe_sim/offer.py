"""What the stand-in sells: Stripe's own public networks, and every network and token of
the service's registry (contracts/tokens.json), so that a registry entry is for sale
here as soon as it is added, with no code."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from service import registry

# Stripe's networks (its `destination_network` values) and each one's key in
# `wallet_addresses[...]`, as Stripe's published schema lists them: its own names,
# `base_network` for Base (`wallet_addresses[base]` is refused). A session's
# `wallet_addresses` carries every one of these keys, null where unset.
STRIPE_WALLET_KEYS: dict[str, str] = {
    "avalanche": "avalanche",
    "base": "base_network",
    "bitcoin": "bitcoin",
    "celo": "celo",
    "ethereum": "ethereum",
    "optimism": "optimism",
    "polygon": "polygon",
    "solana": "solana",
    "stellar": "stellar",
    "sui": "sui",
    "tempo": "tempo",
    "worldchain": "worldchain",
}
# Beside the networks' keys, `wallet_addresses` holds one object of destination tags
# (Stellar's memo), null while none was given.
DESTINATION_TAGS = "destination_tags"
# Networks whose addresses are not EVM addresses (0x and 40 hex digits).
NON_EVM_WALLET_KEYS = frozenset({"bitcoin", "solana", "stellar", "sui"})
# What Stripe itself sells on its public networks. The token registry's networks and
# tokens are sold too, under the registry's keys: what the service sells, the stand-in
# sells.
STRIPE_DESTINATIONS: dict[str, frozenset[str]] = {
    "ethereum": frozenset({"eth", "usdc"}),
    "base": frozenset({"eth", "usdc"}),
    "polygon": frozenset({"pol", "usdc"}),
    "avalanche": frozenset({"avax", "usdc"}),
    "solana": frozenset({"sol", "usdc"}),
    "bitcoin": frozenset({"btc"}),
}


@dataclass(frozen=True)
class Offer:
    """What the stand-in sells: currencies by network, and each network's wallet key
    (Stripe's networks and the registry's, sold or not)."""

    destinations: dict[str, frozenset[str]]
    wallet_keys: dict[str, str]

    def sells(self, currency: str) -> bool:
        return any(currency in currencies for currencies in self.destinations.values())

    def wallet_addresses(self, given: dict[str, str]) -> dict[str, str | None]:
        """A session's `transaction_details.wallet_addresses`: every key, null where unset."""
        keys = sorted({*self.wallet_keys.values(), DESTINATION_TAGS})
        return {key: given.get(key) for key in keys}


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
