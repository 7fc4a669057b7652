"""Prices before buying: Stripe's onramp quote for one accepted destination.

Quotes are estimates that Stripe refreshes every few seconds, and every dApp visitor
asks for the same few amounts, so answers are kept briefly per parameter set: a burst
of visitors costs one call to Stripe.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cachetools import TTLCache

from service.chain.destinations import Destinations
from service.onramp.rules import QuoteRequest, SessionRequest, check_within_limits
from service.onramp.schemas import Quote
from service.onramp.stripe_client import StripeOnramp, StripeUnavailable
from service.settings import OnrampSettings

KEPT_SECONDS = 10.0


async def check_priced_amount(
    quotes: Quotes, request: SessionRequest, settings: OnrampSettings
) -> None:
    """A session bought by its destination amount is held to the same limits as one
    bought by its source amount, at Stripe's price (a quote, kept briefly)."""
    if request.destination_amount is None:
        return
    quote = await quotes.quote(
        QuoteRequest(
            None,
            request.destination_amount,
            request.source_currency,
            request.destination_network,
            request.destination_currency,
        )
    )
    check_within_limits(Decimal(quote.source_total_amount), "destinationAmount", settings)


class Quotes:
    def __init__(self, stripe: StripeOnramp, destinations: Destinations) -> None:
        self.stripe = stripe
        self.destinations = destinations
        self._kept: TTLCache[QuoteRequest, Quote] = TTLCache(maxsize=4096, ttl=KEPT_SECONDS)
        self._asking: dict[QuoteRequest, asyncio.Task[Quote]] = {}

    async def quote(self, request: QuoteRequest) -> Quote:
        """Kept, or asked of Stripe once for every caller waiting on the same request."""
        kept = self._kept.get(request)
        if kept is not None:
            return kept
        asking = self._asking.get(request)
        if asking is None:
            asking = self._asking[request] = asyncio.create_task(self._ask(request))
            asking.add_done_callback(lambda _: self._asking.pop(request, None))
        return await asyncio.shield(asking)

    async def _ask(self, request: QuoteRequest) -> Quote:
        destination = self.destinations[(request.destination_network, request.destination_currency)]
        params: dict[str, Any] = {
            "source_currency": request.source_currency,
            "destination_currencies": [request.destination_currency],
            "destination_networks": [request.destination_network],
        }
        if request.source_amount is not None:
            params["source_amount"] = request.source_amount
        else:
            params["destination_amount"] = request.destination_amount
        answer = await self.stripe.quote(params)
        found = quote_from_stripe(answer, request, destination.stripe_wallet_key)
        self._kept[request] = found
        return found


def quote_from_stripe(answer: dict[str, Any], request: QuoteRequest, wallet_key: str) -> Quote:
    """The one quote asked for, out of Stripe's answer keyed by its network names."""
    offers = (answer.get("destination_network_quotes") or {}).get(wallet_key) or []
    try:
        for offer in offers:
            if offer.get("destination_currency") == request.destination_currency:
                fees = offer.get("fees") or {}
                fetched = answer.get("rate_fetched_at")
                return Quote(
                    source_amount=answer.get("source_amount") or request.source_amount,
                    source_total_amount=str(offer["source_total_amount"]),
                    source_currency=answer.get("source_currency") or request.source_currency,
                    destination_amount=str(offer["destination_amount"]),
                    destination_currency=request.destination_currency,
                    destination_network=request.destination_network,
                    network_fee=fees.get("network_fee_monetary"),
                    transaction_fee=fees.get("transaction_fee_monetary"),
                    rate_fetched_at=datetime.fromtimestamp(float(fetched), UTC)
                    if isinstance(fetched, int | float)
                    else datetime.now(UTC),
                    livemode=bool(answer.get("livemode")),
                )
    except (KeyError, TypeError, AttributeError) as error:  # an answer of another shape
        raise StripeUnavailable("Stripe's quote was not of the expected shape.") from error
    raise StripeUnavailable("Stripe gave no quote for this destination.")
