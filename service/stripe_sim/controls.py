"""The stand-in's `/_sim/` control plane, for tests, benchmarks and the demo: faults to
inject, counters, status changes with their webhooks, webhook delivery settings."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.stripe_sim.params import StripeError
from service.stripe_sim.webhooks import WebhookConfig, WebhookSender

_ADVANCE_PATH = re.compile(r"^/_sim/sessions/(?P<id>[A-Za-z0-9_]+)/advance$")


@dataclass
class Faults:
    """Failures to inject into the next API requests, as a flaky network or Stripe would."""

    latency_ms: int = 0
    fail: int = 0
    fail_status: int = 500
    drop_before: int = 0
    drop_after: int = 0
    # A steady share of create requests failing or dropped, as on a bad day at Stripe.
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    chance: random.Random = field(default_factory=random.Random)

    def take(self, counter: str) -> bool:
        """Whether this request suffers the counted fault; counts it down if so."""
        left: int = getattr(self, counter)
        if left:
            setattr(self, counter, left - 1)
        return left > 0

    def draw_drop(self) -> str | None:
        """By chance, drop this create call's connection "before" or "after" the work."""
        if not self.drop_rate or self.chance.random() >= self.drop_rate:
            return None
        return self.chance.choice(("before", "after"))


@dataclass
class Stats:
    create_requests: int = 0
    sessions_created: int = 0
    quote_requests: int = 0


class Controlled(Protocol):
    """What the controls reach of the stand-in (app.py's `StripeSimulator`)."""

    faults: Faults
    stats: Stats
    webhooks: WebhookSender

    def reset(self) -> None: ...

    def advance(
        self,
        session_id: str,
        status: str,
        *,
        transaction_id: str | None = None,
        destination_amount: str | None = None,
    ) -> dict[str, Any]: ...


def control(
    simulator: Controlled, method: str, path: str, body: bytes
) -> tuple[int, dict[str, Any]]:
    """Test controls: faults, status changes, counters, reset."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return 400, {"error": "body must be JSON"}
    if method == "POST" and path == "/_sim/faults":
        simulator.faults = Faults(
            latency_ms=int(data.get("latencyMs", 0)),
            fail=int(data.get("fail", 0)),
            fail_status=int(data.get("failStatus", 500)),
            drop_before=int(data.get("dropBefore", 0)),
            drop_after=int(data.get("dropAfter", 0)),
            fail_rate=float(data.get("failRate", 0)),
            drop_rate=float(data.get("dropRate", 0)),
        )
        return 200, {"ok": True}
    if method == "GET" and path == "/_sim/stats":
        return 200, {
            "createRequests": simulator.stats.create_requests,
            "sessionsCreated": simulator.stats.sessions_created,
            "quoteRequests": simulator.stats.quote_requests,
        }
    if method == "POST" and path == "/_sim/reset":
        simulator.reset()
        return 200, {"ok": True}
    if method == "POST" and (match := _ADVANCE_PATH.match(path)):
        try:
            session = simulator.advance(
                match["id"],
                str(data.get("status")),
                transaction_id=data.get("transactionId"),
                destination_amount=data.get("destinationAmount"),
            )
        except StripeError as error:
            return error.status, error.body()
        return 200, session
    if method == "POST" and path == "/_sim/webhooks":
        simulator.webhooks.config = WebhookConfig(
            urls=list(data.get("urls", [])),
            secret=data.get("secret"),
            duplicate=int(data.get("duplicate", 1)),
            delay_ms=int(data.get("delayMs", 0)),
            jitter_ms=int(data.get("jitterMs", 0)),
            hold=bool(data.get("hold", False)),
            max_attempts=int(data.get("maxAttempts", 8)),
            backoff_ms=int(data.get("backoffMs", 500)),
        )
        return 200, {"ok": True}
    if method == "POST" and path == "/_sim/webhooks/flush":
        return 200, {"sent": simulator.webhooks.flush(str(data.get("order", "fifo")))}
    if method == "GET" and path == "/_sim/webhooks/deliveries":
        return 200, {
            "pending": simulator.webhooks.pending,
            "deliveries": [
                {
                    "eventId": d.event_id,
                    "url": d.url,
                    "attempts": d.attempts,
                    "status": d.status,
                    "delivered": d.delivered,
                }
                for d in simulator.webhooks.deliveries
            ],
        }
    return 404, {"error": f"no control at {method} {path}"}
