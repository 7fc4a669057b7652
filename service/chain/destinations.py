"""What this deployment can sell: every (network, currency) whose delivery it can prove.

A destination is accepted only when the token registry knows the token on the chain
the deployment reads for that network, and the network has RPC URLs: selling what the
worker cannot verify would end every such purchase in `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from service import registry
from service.chain.addresses import checksum_wallet
from service.settings import ChainSettings, NetworkRpc


@dataclass(frozen=True)
class Destination:
    network: str
    currency: str
    chain_id: int
    token_address: str  # checksummed, overrides applied
    decimals: int
    confirmations: int  # required before a delivery is confirmed
    finality_depth: int  # a confirmed delivery is re-checked until its block is this deep
    stripe_wallet_key: str
    explorer_url: str | None  # where a dApp links a transaction (`/tx/<hash>`); None: nowhere


Destinations = dict[tuple[str, str], Destination]


def accepted_destinations(chain: ChainSettings) -> Destinations:
    """Keyed by (network, currency). `MUSD_TOKEN_ADDRESS` overrides the registry's MUSD
    (and serves a Mezo chain the registry does not list); `DELIVERY_CONFIRMATIONS`
    raises, never lowers, a token's own confirmation count; `MEZO_EXPLORER_URL` replaces
    the registry's explorer on Mezo (empty: none)."""
    accepted: Destinations = {}
    for network in chain.networks.values():
        for token in registry.tokens_on(network.network, network.chain_id):
            accepted[(token.network, token.currency)] = _destination(token, network, chain)
    if chain.musd_token_address:
        known = accepted.get(("mezo", "musd"))
        confirmations = max(chain.delivery_confirmations, known.confirmations if known else 1)
        accepted[("mezo", "musd")] = Destination(
            network="mezo",
            currency="musd",
            chain_id=chain.chain_id,
            token_address=checksum_wallet(chain.musd_token_address),
            decimals=known.decimals if known else 18,
            confirmations=confirmations,
            finality_depth=max(confirmations, known.finality_depth if known else 1),
            stripe_wallet_key=known.stripe_wallet_key if known else "mezo",
            explorer_url=known.explorer_url if known else None,
        )
    if chain.explorer_url is not None:
        for key, destination in accepted.items():
            if destination.network == "mezo":
                accepted[key] = replace(destination, explorer_url=chain.explorer_url or None)
    return accepted


def _destination(token: registry.Token, network: NetworkRpc, chain: ChainSettings) -> Destination:
    confirmations = max(chain.delivery_confirmations, token.confirmations)
    return Destination(
        network=token.network,
        currency=token.currency,
        chain_id=network.chain_id,
        token_address=checksum_wallet(token.address),
        decimals=token.decimals,
        confirmations=confirmations,
        finality_depth=max(confirmations, token.finality_depth),
        stripe_wallet_key=token.stripe_wallet_key,
        explorer_url=token.explorer_url,
    )
