"""What one of Stripe's `crypto.onramp_session` objects must look like before the service
stores it or compares it with its own (`sessions import`, `reconcile`). Pure.

Stripe's answer is checked at the boundary, so that one malformed session is refused
with a reason of its own before the database sees it, and never stops a run: ids and
fields are text where Stripe's schema says so, `created` is a time, and each field
stored in a column fits that column, whose length is read from the model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement

from service.columns import is_unix_seconds, text_limit
from service.onramp.models import SESSIONS

_S = SESSIONS.c
# Where each of Stripe's text fields is stored; its limit is that column's.
_STORED_IN: dict[tuple[str, ...], ColumnElement[Any]] = {
    ("id",): _S.stripe_session_id,
    ("status",): _S.status,
    ("client_secret",): _S.client_secret,
    ("redirect_url",): _S.redirect_url,
    ("transaction_details", "wallet_address"): _S.wallet_address,
    ("transaction_details", "source_amount"): _S.source_amount,
    ("transaction_details", "source_currency"): _S.source_currency,
    ("transaction_details", "destination_currency"): _S.destination_currency,
    ("transaction_details", "destination_network"): _S.destination_network,
    ("transaction_details", "destination_amount"): _S.destination_amount,
    ("transaction_details", "transaction_id"): _S.transaction_hash,
    ("transaction_details", "fees", "network_fee_amount"): _S.network_fee_amount,
    ("transaction_details", "fees", "transaction_fee_amount"): _S.transaction_fee_amount,
}
_LIMITS = {path: text_limit(column) for path, column in _STORED_IN.items()}
_OBJECTS: tuple[tuple[str, ...], ...] = (
    ("metadata",),
    ("transaction_details",),
    ("transaction_details", "fees"),
)
# The most of a malformed value a report repeats.
SHOWN_LIMIT = 64


def malformed(obj: Any) -> str | None:
    """Why `obj` cannot be taken for an onramp session, in one short line that never
    repeats the value (it may be huge, or a client secret); None when it can."""
    if not isinstance(obj, dict):
        return f"not an object but {type(obj).__name__}"
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        return "id is not a string"
    if not is_unix_seconds(obj.get("created")):
        return "created is not a time in seconds"
    if not isinstance(obj.get("livemode"), bool):
        return "livemode is not true or false"
    if not isinstance(obj.get("transaction_details"), dict):
        return "transaction_details is not an object"
    for path in _OBJECTS:
        if not isinstance(_at(obj, path), dict | None):
            return f"{'.'.join(path)} is not an object"
    for path, limit in _LIMITS.items():
        value = _at(obj, path)
        if value is not None and not isinstance(value, str):
            return f"{'.'.join(path)} is not a string"
        if value is not None and len(value) > limit:
            return f"{'.'.join(path)} is longer than {limit} characters"
    return None


def shown(value: Any) -> str | None:
    """A field of a malformed object as a report repeats it: text as it came, anything
    else as JSON, cut to SHOWN_LIMIT characters; None for no value."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= SHOWN_LIMIT else text[:SHOWN_LIMIT] + "…"


def created_day(obj: dict[str, Any]) -> str | None:
    """The UTC day of the session's `created`, when it is a time."""
    created = obj.get("created")
    if not is_unix_seconds(created):
        return None
    return datetime.fromtimestamp(created, UTC).date().isoformat()


def _at(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value
