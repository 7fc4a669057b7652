"""The onramp session object as Stripe shapes it, and the checks Stripe makes on create."""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from decimal import Decimal
from typing import Any

from service.stripe_sim.forms import FormValue
from service.stripe_sim.offer import NON_EVM_WALLET_KEYS, offer
from service.stripe_sim.params import (
    StripeError,
    amount_param,
    amount_text,
    destination_amount_param,
    expand_param,
    list_param,
    random_token,
    refuse_unknown,
    source_currency_param,
    text_param,
)
from service.stripe_sim.prices import NETWORK_FEE, TRANSACTION_FEE_RATE, price, source_for

# Stripe's statuses of an onramp session: the stand-in plays Stripe, so it keeps
# Stripe's list rather than the service's lifecycle.
STATUSES = (
    "initialized",
    "rejected",
    "requires_payment",
    "fulfillment_processing",
    "fulfillment_complete",
)
# Stripe's statuses after which a session never changes.
FINAL_STATUSES = frozenset({"rejected", "fulfillment_complete"})
MAX_SOURCE_AMOUNT = Decimal("25000")
# Like Stripe's test-mode magic values: customers from TEST-NET-3 are refused.
UNSUPPORTED_CUSTOMERS = ipaddress.ip_network("203.0.113.0/24")

_ALLOWED_PARAMS = frozenset(
    {
        "source_amount",
        "source_currency",
        "destination_amount",
        "destination_currency",
        "destination_currencies",
        "destination_network",
        "destination_networks",
        "wallet_addresses",
        "lock_wallet_address",
        "customer_ip_address",
        "metadata",
        "settlement_speed",
        "kyc_details",
        "customer_information",
        "expand",
    }
)
_EVM_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def priced_source(destination_amount: Decimal, currency: str) -> Decimal:
    """What buying `destination_amount` costs, within the amount Stripe allows."""
    if destination_amount > MAX_SOURCE_AMOUNT / price(currency):
        raise StripeError(
            400,
            f"destination_amount costs more than the maximum of {MAX_SOURCE_AMOUNT}.",
            code="crypto_onramp_invalid_destination_amount",
            param="destination_amount",
        )
    return source_for(destination_amount, currency)


def new_session(params: dict[str, FormValue], now: float | None = None) -> dict[str, Any]:
    """A fresh `crypto.onramp_session` for validated create parameters."""
    refuse_unknown(params, _ALLOWED_PARAMS)
    source_amount_text = text_param(params, "source_amount")
    if source_amount_text is not None and params.get("destination_amount") is not None:
        raise StripeError(
            400,
            "You may only specify one of source_amount and destination_amount.",
            code="parameter_invalid_string",
            param="destination_amount",
        )
    source_currency = source_currency_param(params)
    source_amount = None
    if source_amount_text is not None:
        source_amount = amount_param(source_amount_text, "source_amount")
        if source_amount > MAX_SOURCE_AMOUNT:
            raise StripeError(
                400,
                f"source_amount exceeds the maximum of {MAX_SOURCE_AMOUNT} {source_currency}.",
                code="crypto_onramp_invalid_source_amount",
                param="source_amount",
            )
    networks = [n.lower() for n in list_param(params, "destination_networks")]
    currencies = [c.lower() for c in list_param(params, "destination_currencies")]
    network = (
        text_param(params, "destination_network") or (networks[0] if networks else "")
    ).lower()
    currency = (
        text_param(params, "destination_currency") or (currencies[0] if currencies else "")
    ).lower()
    sold = offer()
    for net in {*networks, *([network] if network else [])}:
        if net not in sold.destinations:
            raise StripeError(
                400,
                f"Unsupported destination network: {net}",
                code="crypto_onramp_invalid_source_destination_pair",
                param="destination_network",
            )
    if network and currency and currency not in sold.destinations[network]:
        raise StripeError(
            400,
            f"{currency} is not available on {network}.",
            code="crypto_onramp_invalid_source_destination_pair",
            param="destination_currency",
        )
    wallets = params.get("wallet_addresses", {})
    if not isinstance(wallets, dict):
        raise StripeError(400, "Invalid hash: wallet_addresses", code="parameter_invalid_hash")
    for net, address in wallets.items():
        if net not in sold.wallet_keys.values():
            raise StripeError(
                400, f"Unsupported network in wallet_addresses: {net}", param="wallet_addresses"
            )
        if net not in NON_EVM_WALLET_KEYS and not _EVM_ADDRESS.match(address):
            raise StripeError(
                400,
                f"Invalid wallet address for {net}.",
                code="crypto_onramp_invalid_wallet_address",
                param=f"wallet_addresses[{net}]",
            )
    customer_ip = text_param(params, "customer_ip_address")
    if customer_ip is not None:
        try:
            ip = ipaddress.ip_address(customer_ip)
        except ValueError:
            raise StripeError(
                400,
                "Invalid IP address.",
                code="parameter_invalid_string",
                param="customer_ip_address",
            ) from None
        if ip in UNSUPPORTED_CUSTOMERS:
            raise StripeError(
                400,
                "This customer is not eligible for the crypto onramp.",
                code="crypto_onramp_unsupportable_customer",
            )
    metadata = params.get("metadata", {})
    if not isinstance(metadata, dict) or len(metadata) > 50:
        raise StripeError(400, "Invalid metadata.", code="parameter_invalid_hash", param="metadata")
    destination_amount = destination_amount_param(params, currency)
    if destination_amount is not None:
        source_amount = priced_source(destination_amount, currency)
    lock = text_param(params, "lock_wallet_address") == "true"
    session_id = f"cos_{random_token(24)}"
    session = {
        "id": session_id,
        "object": "crypto.onramp_session",
        "client_secret": f"{session_id}_secret_{random_token(24)}",
        "created": int(now if now is not None else time.time()),
        "livemode": False,
        "metadata": dict(metadata),
        "redirect_url": f"https://crypto.link.com?session_hash={random_token(32)}",
        "kyc_details_provided": "kyc_details" in params,
        "status": "initialized",
        "transaction_details": {
            "destination_amount": amount_text(destination_amount),
            "destination_currency": currency or None,
            "destination_currencies": currencies or ([currency] if currency else []),
            "destination_network": network or None,
            "destination_networks": networks or ([network] if network else []),
            "fees": None,
            "lock_wallet_address": lock,
            "settlement_speed": text_param(params, "settlement_speed") or "instant",
            "source_amount": f"{source_amount:.2f}" if source_amount is not None else None,
            "source_currency": source_currency,
            "transaction_id": None,
            "wallet_address": wallets.get(sold.wallet_keys[network]) if network else None,
            "wallet_addresses": sold.wallet_addresses(wallets),
        },
    }
    expand_param(params, session)
    return session


def retrieved(session: dict[str, Any], params: dict[str, FormValue]) -> dict[str, Any]:
    """`GET /v1/crypto/onramp_sessions/{id}`: the session; its only parameter is `expand`."""
    refuse_unknown(params, frozenset({"expand"}))
    expand_param(params, session)
    return session


# What an onramp session holds, for the paths `expand[]` may name on a list.
SESSION_FIELDS = frozenset(new_session({}, now=0))


def advance(
    session: dict[str, Any],
    status: str,
    *,
    transaction_id: str | None = None,
    destination_amount: str | None = None,
) -> dict[str, Any]:
    """Move a session to `status` as Stripe would, returning the attributes that changed."""
    if status not in STATUSES:
        raise StripeError(400, f"Unknown status: {status}", param="status")
    details = session["transaction_details"]
    previous: dict[str, Any] = {"status": session["status"]}
    session["status"] = status
    if status in {"fulfillment_processing", "fulfillment_complete"} and details["fees"] is None:
        source = Decimal(details["source_amount"] or "0")
        fee = (source * TRANSACTION_FEE_RATE).quantize(Decimal("0.01"))
        details["fees"] = {
            "network_fee_amount": f"{NETWORK_FEE:.2f}",
            "transaction_fee_amount": f"{fee:.2f}",
        }
        if details["destination_amount"] is None:
            previous["transaction_details"] = {"destination_amount": None}
            details["destination_amount"] = (
                destination_amount or f"{source - fee - NETWORK_FEE:.2f}"
            )
    elif destination_amount is not None:
        details["destination_amount"] = destination_amount
    if status == "fulfillment_complete":
        previous.setdefault("transaction_details", {})["transaction_id"] = details["transaction_id"]
        details["transaction_id"] = transaction_id or "0x" + secrets.token_hex(32)
    return previous
