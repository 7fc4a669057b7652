"""A merchant's receiver for bench/merchant_webhooks.py, answering as `RECEIVER` (in
the environment) says: `healthy` 200 at once, `failing` 500 at once, `slow` 200 after
`SLOW_SECONDS`. Each receiver is a process of its own (uvicorn, uvloop, httptools), so
that one endpoint's traffic never queues behind another's in a shared event loop.

    POST /{RECEIVER}  an event
    GET  /stats       requests, distinct webhook-ids, answered, in flight, and when
                      (CLOCK_MONOTONIC, shared by every process on the machine) the
                      first request came and the last new webhook-id
    POST /reset       forget everything (a new round)
    GET  /health      for the harness's start-up wait

Run by the benchmark as `uvicorn bench.receivers:app`; a raw ASGI app, so that a
receiver costs far less per request than the dispatcher sending to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

SLOW_SECONDS = 2.0
ANSWERS = {"healthy": (200, 0.0), "failing": (500, 0.0), "slow": (200, SLOW_SECONDS)}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Tally:
    requests: int = 0
    answered: int = 0
    in_flight: int = 0
    ids: set[str] = field(default_factory=set)
    first_at: float | None = None
    last_new_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "distinct": len(self.ids),
            "answered": self.answered,
            "in_flight": self.in_flight,
            "first_at": self.first_at,
            "last_new_at": self.last_new_at,
        }


NAME = os.environ.get("RECEIVER", "healthy")
STATUS, DELAY = ANSWERS[NAME]
tally = Tally()


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    while (await receive()).get("more_body", False):
        pass


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    global tally  # one receiver per process: a new round starts a new tally
    if method == "GET" and path == "/stats":
        await _answer(send, 200, json.dumps(tally.as_json()).encode())
        return
    if method == "GET" and path == "/health":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    if method == "POST" and path == "/reset":
        tally = Tally()
        await _answer(send, 204, b"")
        return
    if method != "POST" or path != f"/{NAME}":
        await _answer(send, 404, b"{}")
        return
    await _drain(receive)
    now = time.monotonic()
    tally.requests += 1
    tally.first_at = tally.first_at or now
    webhook_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
    if webhook_id not in tally.ids:
        tally.ids.add(webhook_id)
        tally.last_new_at = now
    counted = tally
    counted.in_flight += 1
    try:
        if DELAY:
            await asyncio.sleep(DELAY)
        await _answer(send, STATUS, b'{"ok":true}' if STATUS == 200 else b'{"error":"down"}')
        counted.answered += 1
    finally:
        counted.in_flight -= 1
