"""The stand-in's quotes (`crypto.onramp.quotes`), priced as its sessions are (prices.py)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from service.stripe_sim.forms import FormValue
from service.stripe_sim.offer import offer
from service.stripe_sim.params import (
    StripeError,
    amount_param,
    destination_amount_param,
    list_param,
    random_token,
    source_currency_param,
    text_param,
)
from service.stripe_sim.prices import (
    NETWORK_FEE,
    destination_for,
    transaction_fee,
)
from service.stripe_sim.sessions import priced_source


def new_quote(params: dict[str, FormValue], livemode: bool = False) -> dict[str, Any]:
    """A `crypto.onramp.quotes` object for `GET /v1/crypto/onramp/quotes`."""
    source_text = text_param(params, "source_amount")
    destination_text = text_param(params, "destination_amount")
    if (source_text is None) == (destination_text is None):
        raise StripeError(
            400,
            "Exactly one of source_amount and destination_amount is required.",
            code="parameter_missing",
            param="source_amount",
        )
    source_currency = source_currency_param(params)
    sold = offer()
    networks = [n.lower() for n in list_param(params, "destination_networks")] or list(
        sold.destinations
    )
    currencies = [c.lower() for c in list_param(params, "destination_currencies")]
    for network in networks:
        if network not in sold.destinations:
            raise StripeError(
                400,
                f"Unsupported destination network: {network}",
                code="crypto_onramp_invalid_source_destination_pair",
                param="destination_networks",
            )
    if destination_text is not None and (len(networks) != 1 or len(currencies) != 1):
        raise StripeError(
            400,
            "destination_amount needs exactly one destination currency and network.",
            param="destination_amount",
        )
    quotes: dict[str, list[dict[str, Any]]] = {}
    for network in networks:
        offered = currencies or sorted(sold.destinations[network])
        quotes[sold.wallet_keys[network]] = [
            _network_quote(network, currency, source_text, destination_text)
            for currency in offered
            if currency in sold.destinations[network]
        ]
    source = amount_param(source_text, "source_amount") if source_text else None
    return {
        "id": f"cos_quote_{random_token(20)}",
        "object": "crypto.onramp.quotes",
        "livemode": livemode,
        "rate_fetched_at": time.time(),
        "source_amount": f"{source:.2f}" if source is not None else None,
        "source_currency": source_currency,
        "destination_network_quotes": quotes,
    }


def _network_quote(
    network: str, currency: str, source_text: str | None, destination_text: str | None
) -> dict[str, Any]:
    if destination_text is not None:
        wanted = destination_amount_param({"destination_amount": destination_text}, currency)
        source = priced_source(wanted or Decimal(0), currency)
    else:
        source = amount_param(source_text or "", "source_amount")
    return {
        "id": f"cos_quote_{random_token(12)}",
        "destination_amount": format(destination_for(source, currency).normalize(), "f"),
        "destination_currency": currency,
        "destination_network": network,
        "fees": {
            "network_fee_monetary": f"{NETWORK_FEE:.2f}",
            "transaction_fee_monetary": f"{transaction_fee(source):.2f}",
        },
        "source_total_amount": f"{source:.2f}",
    }
