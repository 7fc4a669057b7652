"""The pure checks of a create request, before anything is stored or sent to Stripe."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from service.chain.addresses import checksum_wallet
from service.chain.destinations import Destinations
from service.columns import is_id
from service.errors import InvalidRequest
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import SESSION_ID_PREFIX
from service.settings import OnrampSettings

SOURCE_CURRENCIES = frozenset({"usd", "eur", "gbp"})
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")


@dataclass(frozen=True)
class SessionRequest:
    """A create request after validation and defaults: what Stripe will be asked for."""

    wallet_address: str
    source_amount: str | None  # exactly one of the two amounts
    source_currency: str
    destination_currency: str
    destination_network: str
    destination_amount: str | None = None

    def fingerprint(self) -> str:
        """Equal for requests that mean the same thing, so a retry matches its original
        (an absent amount is left out, so keys claimed before it existed still match)."""
        fields = {k: v for k, v in vars(self).items() if v is not None}  # every field a str
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _invalid(code: str, field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code=code, errors=[{"field": field, "message": message}])


def parse_amount(value: object, settings: OnrampSettings) -> str:
    """A positive decimal string with at most two fraction digits, within the bounds."""
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        raise _invalid(
            "invalid_amount",
            "sourceAmount",
            'must be a decimal string with at most two fraction digits, like "100.00"',
        )
    amount = Decimal(value)
    if amount <= 0:
        raise _invalid("invalid_amount", "sourceAmount", "must be greater than zero")
    check_within_limits(amount, "sourceAmount", settings)
    return f"{amount:.2f}"


def check_within_limits(amount: Decimal, field: str, settings: OnrampSettings) -> None:
    """What the card pays lies within MIN_SOURCE_AMOUNT and MAX_SOURCE_AMOUNT; for a
    `destinationAmount`, that is Stripe's price of it."""
    if settings.min_source_amount <= amount <= settings.max_source_amount:
        return
    limits = f"between {settings.min_source_amount} and {settings.max_source_amount}"
    message = f"must be {limits}"
    if field != "sourceAmount":
        message = f"must cost {limits} (it costs {amount:.2f})"
    raise _invalid("amount_out_of_range", field, message)


def parse_destination_amount(value: object, decimals: int) -> str:
    """A positive decimal string of the token, with no more fraction digits than it has."""
    places = min(decimals, 18)
    pattern = rf"[0-9]{{1,12}}(?:\.[0-9]{{1,{places}}})?" if places else r"[0-9]{1,12}"
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise _invalid(
            "invalid_amount",
            "destinationAmount",
            f'must be a decimal string with at most {places} fraction digits, like "100"',
        )
    amount = Decimal(value)
    if amount <= 0:
        raise _invalid("invalid_amount", "destinationAmount", "must be greater than zero")
    return format(amount.normalize(), "f")


def check_create_request(
    wallet_address: str,
    source_amount: object,
    destination_amount: object,
    source_currency: str | None,
    destination_currency: str | None,
    destination_network: str | None,
    settings: OnrampSettings,
    destinations: Destinations,
) -> SessionRequest:
    try:
        wallet = checksum_wallet(wallet_address)
    except ValueError as error:
        raise _invalid("invalid_wallet_address", "walletAddress", str(error)) from error
    asked = check_quote_request(
        source_amount,
        destination_amount,
        source_currency,
        destination_network,
        destination_currency,
        settings,
        destinations,
    )
    return SessionRequest(
        wallet,
        asked.source_amount,
        asked.source_currency,
        asked.destination_currency,
        asked.destination_network,
        asked.destination_amount,
    )


def _source_currency(given: str | None, settings: OnrampSettings) -> str:
    # Absent means the default; an empty string is a value, and not a currency.
    source = (settings.default_source_currency if given is None else given).lower()
    if source not in SOURCE_CURRENCIES:
        raise _invalid(
            "unsupported_currency",
            "sourceCurrency",
            f"must be one of {', '.join(sorted(SOURCE_CURRENCIES))}",
        )
    return source


def _destination(
    network: str | None, currency: str | None, settings: OnrampSettings
) -> tuple[str, str]:
    return (
        (settings.destination_network if network is None else network).lower(),
        (settings.destination_currency if currency is None else currency).lower(),
    )


def _unsupported_destination(
    network: str, currency: str, destinations: Destinations
) -> InvalidRequest:
    """Only what this deployment can verify on chain is sold: a (network, currency) in
    the token registry whose network has RPC URLs."""
    accepted = ", ".join(f"{c} on {n}" for n, c in sorted(destinations)) or "nothing"
    networks = {n for n, _ in destinations}
    field = "destinationCurrency" if network in networks else "destinationNetwork"
    return _invalid(
        "unsupported_destination",
        field,
        f"{currency} on {network} is not sold by this service; it sells {accepted}",
    )


class QuoteRequest(NamedTuple):
    source_amount: str | None
    destination_amount: str | None
    source_currency: str
    destination_network: str
    destination_currency: str


def check_quote_request(
    source_amount: object,
    destination_amount: object,
    source_currency: str | None,
    destination_network: str | None,
    destination_currency: str | None,
    settings: OnrampSettings,
    destinations: Destinations,
) -> QuoteRequest:
    """The amount, currency and destination of a create request, checked in that order:
    a quote is for what could be bought."""
    if (source_amount is None) == (destination_amount is None):
        message = "give exactly one of sourceAmount and destinationAmount"
        raise _invalid("invalid_amount", "sourceAmount", message)
    amount = None if source_amount is None else parse_amount(source_amount, settings)
    source = _source_currency(source_currency, settings)
    network, currency = _destination(destination_network, destination_currency, settings)
    destination = destinations.get((network, currency))
    if destination is None:
        raise _unsupported_destination(network, currency, destinations)
    bought = None
    if destination_amount is not None:
        bought = parse_destination_amount(destination_amount, destination.decimals)
    return QuoteRequest(amount, bought, source, network, currency)


def customer_ip(address: str | None) -> str | None:
    """The caller's IP as Stripe accepts it, or None when it is not an IP address."""
    if address is None:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def stripe_create_params(
    request: SessionRequest, onramp_session_id: str, ip: str | None, wallet_key: str
) -> dict[str, object]:
    """The create parameters the contract lists, in stripe-python's nested form;
    `wallet_key` is Stripe's name for the network (`base_network` for Base)."""
    params: dict[str, object] = {
        "wallet_addresses": {wallet_key: request.wallet_address},
        "lock_wallet_address": True,
        "destination_currency": request.destination_currency,
        "destination_network": request.destination_network,
        "destination_currencies": [request.destination_currency],
        "destination_networks": [request.destination_network],
        "source_currency": request.source_currency,
        "metadata": {"onramp_session_id": onramp_session_id},
    }
    if request.source_amount is not None:
        params["source_amount"] = request.source_amount
    else:
        params["destination_amount"] = request.destination_amount
    if ip is not None:
        params["customer_ip_address"] = ip
    return params


def is_session_id(value: str) -> bool:
    return is_id(value, SESSION_ID_PREFIX)


def check_status_filter(status: str | None) -> str | None:
    if status is not None and not LIFECYCLE.is_status(status):
        raise _invalid(
            "invalid_status", "status", f"must be one of {', '.join(LIFECYCLE.statuses)}"
        )
    return status
