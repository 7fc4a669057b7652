"""The accounting of open live streams (pure), and a stream's response giving its place
back however it ends."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from litestar import Request
from litestar.response import ServerSentEventMessage
from litestar.types import Message, ReceiveMessage

from service.errors import StreamCeiling, TooManyStreams
from service.live.held_stream import HeldEventStream
from service.live.slots import StreamCaps, StreamSlots


def refusal(slots: StreamSlots, wallet: str, client: str) -> TooManyStreams:
    with pytest.raises(TooManyStreams) as raised:
        slots.take(wallet, client)
    assert raised.value.code == "too_many_streams"
    assert int((raised.value.headers or {})["Retry-After"]) >= 1
    return raised.value


def test_each_cap_counts_open_streams_and_a_release_frees_one_place_once() -> None:
    slots = StreamSlots(StreamCaps(per_wallet=2, per_client=3, total=4))
    mine = [slots.take("alice", "10.0.0.1") for _ in range(2)]
    assert refusal(slots, "alice", "10.0.0.2").status == 429  # the wallet, from anywhere

    slots.take("bob", "10.0.0.1")
    assert refusal(slots, "carol", "10.0.0.1").status == 429  # the client, for any wallet
    last = slots.take("carol", "10.0.0.2")
    ceiling = refusal(slots, "dave", "10.0.0.3")
    assert (ceiling.status, type(ceiling)) == (503, StreamCeiling)

    mine[0].release()
    mine[0].release()  # ended in two ways at once: one place, not two
    assert (slots.count(), slots.count(wallet="alice"), slots.count(client="10.0.0.1")) == (3, 1, 2)
    slots.take("alice", "10.0.0.1")
    assert refusal(slots, "dave", "10.0.0.3").status == 503

    for slot in (mine[1], last):
        slot.release()
    assert slots.count(wallet="carol") == 0
    assert "carol" not in slots._wallets  # nothing kept for who has nothing open
    assert "10.0.0.2" not in slots._clients


async def test_a_stream_whose_client_is_gone_before_its_first_event_gives_its_place_back() -> None:
    slots = StreamSlots(StreamCaps(per_wallet=1, per_client=1, total=1))
    started = False

    async def events() -> AsyncGenerator[ServerSentEventMessage, None]:
        nonlocal started
        started = True
        yield ServerSentEventMessage(data="never sent")

    scope: Any = {"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}}
    stream = HeldEventStream(events(), slots.take("alice", "10.0.0.1"))
    response = stream.to_asgi_response(None, Request(scope))

    async def receive() -> ReceiveMessage:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        raise OSError("the client is gone")

    with pytest.raises(OSError, match="the client is gone"):
        await response(scope, receive, send)
    assert slots.count() == 0
    assert not started
    slots.take("alice", "10.0.0.1")
