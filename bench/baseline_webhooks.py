"""The baseline for webhook ingestion: the irreducible work, with nothing else.

Verifies the HMAC, inserts the event row (ON CONFLICT DO NOTHING), moves the session
with one conditional UPDATE, in one transaction through a psycopg pool, no ORM. Served
by bench/baseline.py on the same server with the same workers as the service.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime

from litestar import Request, post
from litestar.exceptions import HTTPException

from bench.baseline_pool import pool

SECRET = os.environ["STRIPE_WEBHOOK_SECRET"].encode()


@post("/api/v1/webhooks/stripe", status_code=200)
async def receive(request: Request) -> dict[str, bool]:  # type: ignore[type-arg]
    body = await request.body()
    parts = dict(
        item.split("=", 1) for item in request.headers.get("stripe-signature", "").split(",")
    )
    expected = hmac.new(SECRET, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    if (
        not hmac.compare_digest(expected, parts.get("v1", ""))
        or int(parts["t"]) < time.time() - 300
    ):
        raise HTTPException(status_code=400)
    event = json.loads(body)
    session = event["data"]["object"]
    now = datetime.now(UTC)
    async with pool.connection() as connection, connection.transaction():
        inserted = await connection.execute(
            "INSERT INTO webhook_events (id, type, created, livemode, stripe_session_id, payload,"
            " received_at, attempts) VALUES (%s, %s, %s, false, %s, %s, %s, 0)"
            " ON CONFLICT (id) DO NOTHING",
            (event["id"], event["type"], now, session["id"], body.decode(), now),
        )
        if inserted.rowcount:
            await connection.execute(
                "UPDATE onramp_sessions SET status = %s, updated_at = %s"
                " WHERE stripe_session_id = %s AND status = ANY(%s)",
                (session["status"], now, session["id"], EARLIER[session["status"]]),
            )
    return {"received": True}


EARLIER = {
    "requires_payment": ["initialized"],
    "fulfillment_processing": ["initialized", "requires_payment"],
}
routes = [receive]
