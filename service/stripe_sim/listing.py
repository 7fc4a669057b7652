"""`GET /v1/crypto/onramp_sessions`: Stripe's list, newest first, with its filters and
object-id cursors."""

from __future__ import annotations

import bisect
from typing import Any

from service.stripe_sim.forms import FormValue
from service.stripe_sim.offer import offer
from service.stripe_sim.params import (
    StripeError,
    choice_param,
    expand_param,
    refuse_unknown,
    text_param,
)
from service.stripe_sim.sessions import SESSION_FIELDS, STATUSES

LIST_PATH = "/v1/crypto/onramp_sessions"
_BOUNDS = ("gte", "gt", "lte", "lt")
# The list's parameters, as Stripe's API reference gives them; any other is refused.
_LIST_PARAMS = frozenset(
    {
        "created",
        "destination_currency",
        "destination_network",
        "ending_before",
        "expand",
        "limit",
        "starting_after",
        "status",
    }
)


class SessionOrder:
    """The sessions' (created, id) keys in order, so that a page is a bisection and a
    short walk, not a filter and sort of every session: an import or a reconciliation
    pages through a hundred thousand of them. Rebuilt once after sessions were added."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, str]] = []
        self._stale = False

    def changed(self) -> None:
        self._stale = True

    def keys(self, sessions: dict[str, dict[str, Any]]) -> list[tuple[int, str]]:
        if self._stale or len(self._keys) != len(sessions):
            self._keys = sorted((s["created"], s["id"]) for s in sessions.values())
            self._stale = False
        return self._keys


def list_sessions(
    sessions: dict[str, dict[str, Any]], order: SessionOrder, params: dict[str, FormValue]
) -> dict[str, Any]:
    refuse_unknown(params, _LIST_PARAMS)
    expand_param(params, SESSION_FIELDS, prefix="data.")
    sold = offer()
    filters = {
        "status": choice_param(params, "status", STATUSES),
        "destination_network": choice_param(params, "destination_network", sold.wallet_keys),
        "destination_currency": choice_param(
            params,
            "destination_currency",
            frozenset().union(*sold.destinations.values()),
        ),
    }
    wanted = {name: value for name, value in filters.items() if value is not None}
    limit = _limit(params)
    keys = order.keys(sessions)
    low, high = _created_range(keys, params)
    if before := text_param(params, "ending_before"):
        start = _position(keys, sessions, before)
        newer = _walk(sessions, keys, range(max(start + 1, low), high), wanted, limit + 1)
        return _page(newer[:limit][::-1], has_more=len(newer) > limit)
    if after := text_param(params, "starting_after"):
        high = min(high, _position(keys, sessions, after))
    older = _walk(sessions, keys, range(high - 1, low - 1, -1), wanted, limit + 1)
    return _page(older[:limit], has_more=len(older) > limit)


def _position(keys: list[tuple[int, str]], sessions: dict[str, dict[str, Any]], id_: str) -> int:
    session = sessions.get(id_)
    if session is None:
        raise StripeError(400, f"No such crypto.onramp_session: '{id_}'", code="resource_missing")
    return bisect.bisect_left(keys, (session["created"], id_))


def _walk(
    sessions: dict[str, dict[str, Any]],
    keys: list[tuple[int, str]],
    positions: range,
    filters: dict[str, str],
    wanted: int,
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for position in positions:
        session = sessions[keys[position][1]]
        if _matches(session, filters):
            found.append(session)
            if len(found) == wanted:
                break
    return found


def _created_range(keys: list[tuple[int, str]], params: dict[str, FormValue]) -> tuple[int, int]:
    created = params.get("created", {})
    if isinstance(created, str):
        created = {"gte": created, "lte": created}
    if not isinstance(created, dict):
        raise StripeError(
            400, "Invalid hash: created", code="parameter_invalid_hash", param="created"
        )
    low, high = 0, len(keys)
    for bound, text in created.items():
        if bound not in _BOUNDS:
            raise StripeError(
                400,
                f"Received unknown parameter: created[{bound}]",
                code="parameter_unknown",
                param=f"created[{bound}]",
            )
        if not text.isdigit():
            raise StripeError(
                400,
                f"Invalid integer: {text}",
                code="parameter_invalid_integer",
                param=f"created[{bound}]",
            )
        at = int(text)
        if bound == "gte":
            low = max(low, bisect.bisect_left(keys, (at, "")))
        elif bound == "gt":
            low = max(low, bisect.bisect_left(keys, (at + 1, "")))
        elif bound == "lte":
            high = min(high, bisect.bisect_left(keys, (at + 1, "")))
        else:
            high = min(high, bisect.bisect_left(keys, (at, "")))
    return low, max(low, high)


def _page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "url": LIST_PATH, "has_more": has_more, "data": data}


def _limit(params: dict[str, FormValue]) -> int:
    text = text_param(params, "limit") or "10"
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise StripeError(
            400,
            f"Invalid integer: {text}; limit must be between 1 and 100.",
            code="parameter_invalid_integer",
            param="limit",
        )
    return int(text)


def _matches(session: dict[str, Any], filters: dict[str, str]) -> bool:
    details = session["transaction_details"]
    found = {
        "status": session["status"],
        "destination_currency": details["destination_currency"],
        "destination_network": details["destination_network"],
    }
    return all(found[name] == value for name, value in filters.items())
