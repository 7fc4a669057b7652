"""`GET /v1/crypto/onramp_sessions`: Stripe's list, newest first, with its filters and
object-id cursors."""

from __future__ import annotations

from typing import Any

from service.stripe_sim.forms import FormValue
from service.stripe_sim.params import StripeError, text_param

LIST_PATH = "/v1/crypto/onramp_sessions"
_BOUNDS = {"gte": int.__ge__, "gt": int.__gt__, "lte": int.__le__, "lt": int.__lt__}


def list_sessions(
    sessions: dict[str, dict[str, Any]], params: dict[str, FormValue]
) -> dict[str, Any]:
    limit = _limit(params)
    chosen = [s for s in sessions.values() if _matches(s, params)]
    ordered = sorted(chosen, key=lambda s: (s["created"], s["id"]), reverse=True)
    ids = [s["id"] for s in ordered]
    if before := text_param(params, "ending_before"):
        newer = ordered[: ids.index(before)] if before in ids else []
        return _page(newer[-limit:], has_more=len(newer) > limit)
    if after := text_param(params, "starting_after"):
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    return _page(ordered[:limit], has_more=len(ordered) > limit)


def _page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "url": LIST_PATH, "has_more": has_more, "data": data}


def _limit(params: dict[str, FormValue]) -> int:
    text = text_param(params, "limit") or "10"
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise StripeError(400, "Invalid integer: limit must be between 1 and 100.", param="limit")
    return int(text)


def _matches(session: dict[str, Any], params: dict[str, FormValue]) -> bool:
    details = session["transaction_details"]
    for name, value in (
        ("status", session["status"]),
        ("destination_currency", details["destination_currency"]),
        ("destination_network", details["destination_network"]),
    ):
        wanted = text_param(params, name)
        if wanted is not None and wanted != value:
            return False
    created = params.get("created", {})
    if isinstance(created, str):
        created = {"gte": created, "lte": created}
    if not isinstance(created, dict):
        raise StripeError(400, "Invalid hash: created", param="created")
    for bound, text in created.items():
        if bound not in _BOUNDS or not str(text).isdigit():
            raise StripeError(400, f"Invalid created[{bound}].", param="created")
        if not _BOUNDS[bound](session["created"], int(text)):
            return False
    return True
