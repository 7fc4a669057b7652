"""The live streams' ceilings through a real server: open streams are capped per wallet,
per client network and per process, a closed stream gives its place back, a settled
session's stream is 204, and a stream past its time asks its client to reconnect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from service.settings import Settings
from tests.live.streams import (
    Replicas,
    events_of,
    next_session_event,
    replicas_in_threads,
    stream_url,
)
from tests.onramp.conftest import new_wallet

# What these tests show does not depend on the database: one is enough.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def open_stream(
    stack: AsyncExitStack, client: httpx.AsyncClient, owner: Replicas, session_id: str
) -> httpx.Response:
    """A stream left open until `stack` closes (or the test closes it); a refusal, read."""
    url = stream_url(owner, {"id": session_id})
    request = client.build_request("GET", url, headers=owner.headers)
    response = await client.send(request, stream=True)
    stack.push_async_callback(response.aclose)
    if response.status_code != 200:
        await response.aread()
    return response


async def opens_once_a_place_frees(
    stack: AsyncExitStack, client: httpx.AsyncClient, owner: Replicas, session_id: str
) -> httpx.Response:
    """The server hears of a closed connection a moment after the client closes it:
    asked again until it has (a refusal is cheap), for at most 5 s."""
    async with asyncio.timeout(5):
        while True:
            response = await open_stream(stack, client, owner, session_id)
            if response.status_code == 200:
                return response
            await asyncio.sleep(0.05)


async def assert_health_is_fast(client: httpx.AsyncClient, url: str) -> None:
    started = time.monotonic()
    assert (await client.get(f"{url}/health")).status_code == 200
    assert time.monotonic() - started < 0.5


def assert_too_many_streams(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_streams"
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_wallet_over_its_cap_is_refused_while_another_wallet_streams(
    live_settings: Callable[..., Settings],
) -> None:
    with replicas_in_threads(live_settings(LIVE_MAX_STREAMS_PER_WALLET="2"), count=1) as urls:
        mine, theirs = Replicas(urls, new_wallet()), Replicas(urls, new_wallet())
        async with httpx.AsyncClient(timeout=10) as client, AsyncExitStack() as stack:
            session = (await mine.create(client))["id"]
            held = [await open_stream(stack, client, mine, session) for _ in range(2)]
            assert [response.status_code for response in held] == [200, 200]

            assert_too_many_streams(await open_stream(stack, client, mine, session), 429)
            other = (await theirs.create(client))["id"]
            watching = await open_stream(stack, client, theirs, other)
            assert (await next_session_event(events_of(watching))).session["id"] == other
            await assert_health_is_fast(client, urls[0])

            await held[0].aclose()  # the client goes away: its place is free again
            again = events_of(await opens_once_a_place_frees(stack, client, mine, session))
            assert (await next_session_event(again)).session["id"] == session
            assert_too_many_streams(await open_stream(stack, client, mine, session), 429)


async def test_a_server_at_its_ceiling_answers_503_until_a_stream_closes(
    live_settings: Callable[..., Settings],
) -> None:
    settings = live_settings(
        LIVE_MAX_STREAMS="2", LIVE_MAX_STREAMS_PER_CLIENT="2", LIVE_MAX_STREAMS_PER_WALLET="1"
    )
    with replicas_in_threads(settings, count=1) as urls:
        wallets = [Replicas(urls, new_wallet()) for _ in range(3)]
        async with httpx.AsyncClient(timeout=10) as client, AsyncExitStack() as stack:
            sessions = [(await owner.create(client))["id"] for owner in wallets]
            held = [await open_stream(stack, client, wallets[i], sessions[i]) for i in range(2)]
            assert [response.status_code for response in held] == [200, 200]

            assert_too_many_streams(await open_stream(stack, client, wallets[2], sessions[2]), 503)
            await assert_health_is_fast(client, urls[0])

            await held[1].aclose()
            late = await opens_once_a_place_frees(stack, client, wallets[2], sessions[2])
            assert (await next_session_event(events_of(late))).session["id"] == sessions[2]


async def test_a_settled_sessions_stream_answers_204(
    live_settings: Callable[..., Settings],
) -> None:
    with replicas_in_threads(live_settings(), count=1) as urls:
        owner = Replicas(urls, new_wallet())
        async with httpx.AsyncClient(timeout=10) as client:
            session = await owner.create(client)
            await owner.webhook(client, session, "rejected")
            settled = await client.get(stream_url(owner, session), headers=owner.headers)
            assert settled.status_code == 204
            assert settled.content == b""


async def test_a_stream_past_its_time_asks_its_client_back_and_resumes_from_its_id(
    live_settings: Callable[..., Settings],
) -> None:
    with replicas_in_threads(live_settings(LIVE_MAX_STREAM_SECONDS="1"), count=1) as urls:
        owner = Replicas(urls, new_wallet())
        async with httpx.AsyncClient(timeout=10) as client:
            session = await owner.create(client)
            url = stream_url(owner, session)
            async with client.stream("GET", url, headers=owner.headers) as response:
                events = events_of(response)
                first = await next_session_event(events)
                async with asyncio.timeout(5):
                    rest = [event async for event in events]
            assert all(event.event != "session" for event in rest)
            assert rest[-1].retry is not None
            assert int(rest[-1].retry) > 0

            await owner.webhook(client, session, "requires_payment")  # between the two
            resumed = {**owner.headers, "Last-Event-ID": first.id or ""}
            async with client.stream("GET", url, headers=resumed) as response:
                missed = await next_session_event(events_of(response))
            assert missed.session["status"] == "requires_payment"
