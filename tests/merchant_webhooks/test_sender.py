"""An attempt's answer as the attempt log keeps it, against a real local receiver."""

from __future__ import annotations

import asyncio

from service.demo.local_servers import patient
from service.merchant_webhooks.sender import Sender
from tests.support.receivers import receiving


async def test_a_receiver_slower_than_the_time_limit_is_a_failure_at_the_limit() -> None:
    """An endpoint that holds the request is given up at the attempt's time limit
    (`rules.ATTEMPT_TIMEOUT_SECONDS` in service, a fraction of a second here): the
    failure says so, the attempt lasts the limit, and the receiver did get the request
    (a retry may well reach it twice)."""
    sender = Sender(deployed=False, timeout_seconds=0.3)
    try:
        with receiving(delay=2.0) as receiver:
            answer = await sender.send(receiver.url, {"webhook-id": "msg_slow"}, '{"type":"x"}')
            [request] = await asyncio.to_thread(receiver.wait_for, 1)
    finally:
        await sender.close()
    assert (answer.status_code, answer.error) == (None, "no answer within 0.3 s")
    # Not the receiver's 2 s: the limit, and however late a busy machine runs it.
    assert 300 <= answer.duration_ms < patient(1.0) * 1000
    assert request.headers["webhook-id"] == "msg_slow"
