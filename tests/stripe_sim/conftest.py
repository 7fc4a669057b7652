"""The stand-in as clients meet it: stripe-python pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe as stripe_sdk

from service.demo.local_servers import serve_in_thread
from tests.support.stripe import RunningStripe


@pytest.fixture
async def sdk(stripe: RunningStripe) -> AsyncIterator[stripe_sdk.StripeClient]:
    http = stripe_sdk.HTTPXClient(timeout=5)
    yield stripe_sdk.StripeClient(
        stripe.secret_key,
        base_addresses={"api": stripe.url},
        max_network_retries=0,
        http_client=http,
    )
    await http.close_async()  # type: ignore[no-untyped-call]


@dataclass
class Receiver:
    """A webhook endpoint that refuses its first `failures` deliveries."""

    failures: int = 0
    received: list[tuple[bytes, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        status = 500 if self.failures > 0 else 200
        self.failures -= 1
        if status == 200:
            self.received.append((body, headers[b"stripe-signature"].decode()))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    endpoint = Receiver()
    url, server, thread = serve_in_thread(endpoint)
    yield endpoint, url
    server.should_exit = True
    thread.join(timeout=5)
