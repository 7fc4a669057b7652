"""The Stripe stand-in served over real HTTP, in a thread of the test process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from service.demo.local_servers import serve_in_thread
from service.stripe_sim.app import DEFAULT_SECRET_KEY, StripeSimulator


@dataclass
class RunningStripe:
    url: str
    simulator: StripeSimulator
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def secret_key(self) -> str:
        return DEFAULT_SECRET_KEY

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.url}/_sim/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def faults(self, **faults: float) -> None:
        self.control("POST", "faults", faults)

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.control("GET", "stats")
        return stats

    def advance(self, stripe_session_id: str, status: str, **extra: str) -> dict[str, Any]:
        session: dict[str, Any] = self.control(
            "POST", f"sessions/{stripe_session_id}/advance", {"status": status, **extra}
        )
        return session

    def send_webhooks_to(self, url: str, secret: str, **options: Any) -> None:
        self.control("POST", "webhooks", {"urls": [url], "secret": secret, **options})

    def wait_for_webhooks(self, timeout: float = 20) -> list[dict[str, Any]]:
        """Until every event has been delivered (or given up on); the delivery log."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.control("GET", "webhooks/deliveries")
            if state["pending"] == 0:
                deliveries: list[dict[str, Any]] = state["deliveries"]
                return deliveries
            if time.monotonic() > deadline:
                raise AssertionError(f"webhooks still pending: {state}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_stripe() -> RunningStripe:
    simulator = StripeSimulator()
    url, server, thread = serve_in_thread(simulator)
    return RunningStripe(url, simulator, server, thread)
