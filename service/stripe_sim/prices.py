"""The stand-in's prices and fees, shared by its sessions and its quotes: the fees come
out of the source amount, and the rest buys the destination currency at a fixed price."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

NETWORK_FEE = Decimal("0.01")
TRANSACTION_FEE_RATE = Decimal("0.015")
CENT = Decimal("0.01")
# Test-mode prices in the source currency; stablecoins at par.
PRICES: dict[str, Decimal] = {
    "usdc": Decimal(1),
    "musd": Decimal(1),
    "eth": Decimal(3000),
    "btc": Decimal(90000),
    "sol": Decimal(150),
    "pol": Decimal("0.25"),
    "avax": Decimal(25),
}
_CRYPTO_PLACES = Decimal("0.000001")  # what a quote shows


def price(currency: str) -> Decimal:
    """A token the stand-in has no price for (a registry entry it does not know) sells at
    par, as the stablecoins do."""
    return PRICES.get(currency, Decimal(1))


def transaction_fee(source_amount: Decimal) -> Decimal:
    return (source_amount * TRANSACTION_FEE_RATE).quantize(CENT)


def destination_for(source_amount: Decimal, currency: str) -> Decimal:
    """What `source_amount` buys once the fees are taken from it."""
    spent = source_amount - transaction_fee(source_amount) - NETWORK_FEE
    return (max(spent, Decimal(0)) / price(currency)).quantize(_CRYPTO_PLACES, ROUND_DOWN)


def source_for(destination_amount: Decimal, currency: str) -> Decimal:
    """The smallest source amount that buys at least `destination_amount`."""
    needed = destination_amount * price(currency) + NETWORK_FEE
    source = (needed / (1 - TRANSACTION_FEE_RATE)).quantize(CENT, ROUND_UP)
    # The fee is rounded to the cent, so the estimate can be a cent off either way.
    while destination_for(source, currency) < destination_amount:
        source += CENT
    while source > CENT and destination_for(source - CENT, currency) >= destination_amount:
        source -= CENT
    return source
