"""`GET /api/v1/config`: the public settings a frontend would otherwise copy by hand."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State

from service.dapp.provider import DappServices
from service.dapp.schemas import ClientConfig, DestinationConfig, SignInConfig, lifecycle_config

LIFECYCLE_CONFIG = lifecycle_config()


@get(
    "/api/v1/config",
    tags=["dapp"],
    summary="What a dApp needs to start: Stripe's publishable key, destinations, limits",
)
async def client_config(state: State) -> ClientConfig:
    found = DappServices.of(state)
    settings = found.settings
    publishable = settings.stripe.publishable_key
    return ClientConfig(
        publishable_key=publishable.get_secret_value() if publishable else None,
        stripe_stand_in=settings.stripe.stand_in is not None,
        source_currency=settings.onramp.default_source_currency,
        min_source_amount=f"{settings.onramp.min_source_amount:.2f}",
        max_source_amount=f"{settings.onramp.max_source_amount:.2f}",
        default_network=settings.onramp.destination_network,
        default_currency=settings.onramp.destination_currency,
        destinations=[
            DestinationConfig(
                network=d.network,
                currency=d.currency,
                chain_id=d.chain_id,
                token_address=d.token_address,
                decimals=d.decimals,
                confirmations=d.confirmations,
                explorer_url=d.explorer_url,
            )
            for d in sorted(found.destinations.values(), key=lambda d: (d.network, d.currency))
        ],
        sign_in=SignInConfig(
            domain=settings.auth.domain, uri=settings.auth.uri, chain_id=settings.chain.chain_id
        ),
        lifecycle=LIFECYCLE_CONFIG,
    )


routes = [client_config]
