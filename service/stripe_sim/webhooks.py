"""The stand-in's webhook sender: signed `crypto.onramp_session_updated` events, retried.

Like Stripe it signs `t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">` with the endpoint's
secret, delivers at least once, retries any non-2xx answer with exponential back-off,
and promises no order. Test controls make it worse on purpose: duplicate every
delivery, delay or jitter it, or hold events back and release them in another order.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.onramp.stripe_client import API_VERSION


@dataclass
class WebhookConfig:
    urls: list[str] = field(default_factory=list)
    secret: str | None = None
    duplicate: int = 1
    delay_ms: int = 0
    jitter_ms: int = 0
    hold: bool = False
    max_attempts: int = 8
    backoff_ms: int = 500


@dataclass
class Delivery:
    event_id: str
    url: str
    attempts: int = 0
    status: int | None = None
    delivered: bool = False


def session_event(session: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "crypto.onramp_session_updated",
        "data": {"object": copy.deepcopy(session), "previous_attributes": previous},
    }


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class WebhookSender:
    config: WebhookConfig = field(default_factory=WebhookConfig)
    deliveries: list[Delivery] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None

    @property
    def pending(self) -> int:
        return len(self._tasks) + len(self.held)

    def emit(self, event: dict[str, Any]) -> None:
        if not self.config.urls or not self.config.secret:
            return
        if self.config.hold:
            self.held.append(event)
            return
        self._send(event)

    def flush(self, order: str = "fifo") -> int:
        """Send what was held back, in arrival order, reversed, or shuffled."""
        held, self.held = self.held, []
        if order == "reverse":
            held.reverse()
        elif order == "shuffle":
            random.shuffle(held)
        for event in held:
            self._send(event)
        return len(held)

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.held.clear()
        self.deliveries.clear()
        self.config = WebhookConfig()

    def _send(self, event: dict[str, Any]) -> None:
        for url in self.config.urls:
            for _ in range(max(1, self.config.duplicate)):
                delivery = Delivery(event["id"], url)
                self.deliveries.append(delivery)
                task = asyncio.get_running_loop().create_task(self._deliver(event, delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: dict[str, Any], delivery: Delivery) -> None:
        config = self.config
        payload = json.dumps(event).encode()
        jitter = random.randint(0, config.jitter_ms) if config.jitter_ms else 0  # noqa: S311
        delay = config.delay_ms + jitter
        if delay:
            await asyncio.sleep(delay / 1000)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10)
        for attempt in range(config.max_attempts):
            delivery.attempts = attempt + 1
            headers = {
                "Stripe-Signature": signature_header(payload, config.secret or ""),
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            try:
                response = await self._client.post(delivery.url, content=payload, headers=headers)
                delivery.status = response.status_code
                if 200 <= response.status_code < 300:
                    delivery.delivered = True
                    return
            except httpx.HTTPError:
                delivery.status = None
            await asyncio.sleep(config.backoff_ms / 1000 * 2**attempt)
