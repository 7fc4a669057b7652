"""Which contract a session's (network, currency) is on the configured chain."""

from __future__ import annotations

from dataclasses import dataclass

from service.chain import registry
from service.chain.addresses import checksum_wallet
from service.settings import ChainSettings


@dataclass(frozen=True)
class DeliveryToken:
    address: str
    decimals: int
    confirmations: int


def token_for(network: str, currency: str, chain: ChainSettings) -> DeliveryToken | None:
    """The token the session's tokens must come from, on `MEZO_CHAIN_ID`.

    `MUSD_TOKEN_ADDRESS` overrides the registry's MUSD; `DELIVERY_CONFIRMATIONS`
    raises (never lowers) a token's own confirmation count.
    """
    known = registry.find_token(network, currency, chain.chain_id)
    if network == "mezo" and currency == "musd" and chain.musd_token_address:
        return DeliveryToken(
            checksum_wallet(chain.musd_token_address),
            known.decimals if known else 18,
            max(chain.delivery_confirmations, known.confirmations if known else 1),
        )
    if known is None:
        return None
    return DeliveryToken(
        checksum_wallet(known.address),
        known.decimals,
        max(chain.delivery_confirmations, known.confirmations),
    )
