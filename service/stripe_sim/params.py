"""Reading request parameters as Stripe does, and Stripe's error envelope."""

from __future__ import annotations

import secrets
import string
from decimal import Decimal, InvalidOperation
from typing import Any

from service.stripe_sim.forms import FormValue
from service.stripe_sim.offer import offer

_ALPHANUMERIC = string.ascii_letters + string.digits
SOURCE_CURRENCIES = frozenset({"usd", "eur", "gbp"})


class StripeError(Exception):
    """An error Stripe would answer with: its HTTP status and its error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.envelope: dict[str, Any] = {"type": type_, "message": message}
        if code:
            self.envelope["code"] = code
        if param:
            self.envelope["param"] = param

    def body(self) -> dict[str, Any]:
        return {"error": self.envelope}


def source_currency_param(params: dict[str, FormValue]) -> str:
    currency = (text_param(params, "source_currency") or "usd").lower()
    if currency not in SOURCE_CURRENCIES:
        raise StripeError(
            400,
            f"Unsupported source currency: {currency}",
            code="crypto_onramp_invalid_source_destination_pair",
            param="source_currency",
        )
    return currency


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def text_param(params: dict[str, FormValue], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise StripeError(
            400, f"Invalid string: {name}", code="parameter_invalid_string", param=name
        )
    return value


def list_param(params: dict[str, FormValue], name: str) -> list[str]:
    value = params.get(name, [])
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise StripeError(400, f"Invalid array: {name}", code="parameter_invalid_array", param=name)
    return value


def amount_param(text: str, name: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(-1)
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or amount <= 0 or not isinstance(exponent, int) or exponent < -2:
        raise StripeError(
            400,
            f"Invalid {name}: a positive amount with at most two decimal places is required.",
            code="crypto_onramp_invalid_source_amount",
            param=name,
        )
    return amount


def destination_amount_param(params: dict[str, FormValue], currency: str) -> Decimal | None:
    """A session bought by its destination amount: Stripe fixes the tokens, and the
    card pays what they cost with the fees."""
    text = text_param(params, "destination_amount")
    if text is None:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount <= 0 or not offer().sells(currency):
        raise StripeError(
            400,
            "Invalid destination_amount: a positive amount of a priced currency is required.",
            code="crypto_onramp_invalid_destination_amount",
            param="destination_amount",
        )
    return amount


def amount_text(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount.normalize(), "f")
