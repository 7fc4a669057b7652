"""Reading request parameters as Stripe does, and Stripe's error envelope."""

from __future__ import annotations

import secrets
import string
from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Any

from service.stripe_sim.forms import FormValue
from service.stripe_sim.offer import offer

_ALPHANUMERIC = string.ascii_letters + string.digits
SOURCE_CURRENCIES = frozenset({"usd", "eur", "gbp"})
# Where Stripe's error envelope points for a coded error (`doc_url`).
ERROR_DOCS = "https://stripe.com/docs/error-codes/"


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
            self.envelope["doc_url"] = ERROR_DOCS + code.replace("_", "-")
        if param:
            self.envelope["param"] = param

    def body(self) -> dict[str, Any]:
        return {"error": self.envelope}


def refuse_unknown(params: dict[str, FormValue], known: frozenset[str]) -> None:
    """Stripe refuses a parameter it does not know rather than ignoring it."""
    unknown = sorted(set(params) - known)
    if unknown:
        raise StripeError(
            400,
            f"Received unknown parameter: {unknown[0]}",
            code="parameter_unknown",
            param=unknown[0],
        )


def choice_param(params: dict[str, FormValue], name: str, choices: Collection[str]) -> str | None:
    """An enum parameter: one of `choices`, or absent."""
    value = text_param(params, name)
    if value is not None and value not in choices:
        raise StripeError(
            400,
            f"Invalid {name}: must be one of {', '.join(sorted(choices))}",
            code="parameter_invalid_string",
            param=name,
        )
    return value


def expand_param(params: dict[str, FormValue], fields: Collection[str], prefix: str = "") -> None:
    """`expand[]` (or `expand[0]`): each path must name a field of the answer (after
    `prefix`, `data.` on a list). Stripe's schema gives an onramp session no expandable
    field, so there is nothing to expand: a path to a field it has is answered as it is,
    a path to none is refused as Stripe refuses a path it cannot expand."""
    for index, path in enumerate(list_param(params, "expand")):
        field = path.removeprefix(prefix).split(".")[0] if path.startswith(prefix) else ""
        if field not in fields:
            raise StripeError(
                400, f"This property cannot be expanded ({path}).", param=f"expand[{index}]"
            )


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
