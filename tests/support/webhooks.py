"""Stripe events and signatures as Stripe makes them, for the tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from service.onramp.stripe_client import API_VERSION

WEBHOOK_SECRET = "whsec_test_" + "a" * 24


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header: `t=…,v1=…`, the HMAC of `{t}.{raw body}`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def onramp_event(
    stripe_session_id: str,
    status: str,
    *,
    onramp_session_id: str | None = None,
    event_id: str | None = None,
    transaction_id: str | None = None,
    destination_amount: str | None = None,
    event_type: str = "crypto.onramp_session_updated",
) -> dict[str, Any]:
    fulfilled = status == "fulfillment_complete"
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {
            "object": {
                "id": stripe_session_id,
                "object": "crypto.onramp_session",
                "client_secret": f"{stripe_session_id}_secret_{secrets.token_hex(8)}",
                "created": int(time.time()),
                "livemode": False,
                "metadata": {"onramp_session_id": onramp_session_id} if onramp_session_id else {},
                "status": status,
                "transaction_details": {
                    "destination_amount": destination_amount if fulfilled else None,
                    "destination_currency": "musd",
                    "destination_network": "mezo",
                    "source_amount": "100.00",
                    "source_currency": "usd",
                    "transaction_id": transaction_id if fulfilled else None,
                },
            }
        },
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()
