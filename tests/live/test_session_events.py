"""Live status over Server-Sent Events, through real HTTP servers on both databases: the
stream sees changes made by another replica, resumes from `Last-Event-ID`, keeps the
connection alive and ends once the session is settled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

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
from tests.onramp.conftest import new_wallet, token_for
from tests.support.processes import service_env, serving
from tests.support.stripe import RunningStripe


async def test_a_stream_sees_changes_made_by_another_replica(replicas: Replicas) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        async with client.stream(
            "GET", stream_url(replicas, session), headers=replicas.headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = events_of(response)
            first = await next_session_event(events)
            assert first.session["id"] == session["id"]
            assert first.session["status"] == "initialized"
            assert first.session["clientSecret"] == session["clientSecret"]

            for status in ("requires_payment", "fulfillment_complete"):
                sent = time.monotonic()
                await replicas.webhook(client, session, status)
                changed = await next_session_event(events)
                assert changed.session["status"] == status
                assert time.monotonic() - sent < 1.0
                assert int(changed.id or 0) > int(first.id or 0)
            assert changed.session["delivery"]["status"] == "pending"
            assert changed.session["transactionHash"] == "0x" + "ab" * 32


async def test_a_rejected_session_ends_its_stream(replicas: Replicas) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        async with client.stream(
            "GET", stream_url(replicas, session), headers=replicas.headers
        ) as response:
            events = events_of(response)
            await next_session_event(events)
            await replicas.webhook(client, session, "rejected")
            assert (await next_session_event(events)).session["status"] == "rejected"
            async with asyncio.timeout(5):
                rest = [event async for event in events]
            assert all(event.event != "session" for event in rest)


async def test_a_reconnect_gets_the_change_it_missed_and_nothing_it_has(replicas: Replicas) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        url = stream_url(replicas, session)
        async with client.stream("GET", url, headers=replicas.headers) as response:
            first = await next_session_event(events_of(response))

        await replicas.webhook(client, session, "requires_payment")  # while disconnected

        resumed_headers = {**replicas.headers, "Last-Event-ID": first.id or ""}
        async with client.stream("GET", url, headers=resumed_headers) as response:
            missed = await next_session_event(events_of(response))
        assert missed.session["status"] == "requires_payment"

        # Holding the newest state already: only heartbeats until something changes.
        current = {**replicas.headers, "Last-Event-ID": missed.id or ""}
        async with client.stream("GET", url, headers=current) as response:
            events = events_of(response)
            async with asyncio.timeout(3):
                quiet = await anext(events)
            assert quiet.event is None
            assert quiet.comments == ["heartbeat"]
            await replicas.webhook(client, session, "fulfillment_processing")
            assert (await next_session_event(events)).session["status"] == "fulfillment_processing"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_one_process_hands_its_streams_each_change_at_once(
    live_settings: Callable[..., Settings],
) -> None:
    """On SQLite, which is polled for other processes' changes: two changes this process
    makes back to back reach its stream at once (before a poll could), each of them."""
    with replicas_in_threads(live_settings(), count=1) as urls:
        replicas = Replicas(urls, new_wallet())
        async with httpx.AsyncClient(timeout=10) as client:
            session = await replicas.create(client)
            async with client.stream(
                "GET", stream_url(replicas, session), headers=replicas.headers
            ) as response:
                events = events_of(response)
                await next_session_event(events)
                sent = time.monotonic()
                await replicas.webhook(client, session, "fulfillment_processing")
                await replicas.webhook(client, session, "fulfillment_complete")
                seen = [(await next_session_event(events)).session["status"] for _ in range(2)]
                assert seen == ["fulfillment_processing", "fulfillment_complete"]
                assert time.monotonic() - sent < 0.45  # SQLite is polled every 0.5 s


async def test_only_the_owner_may_watch_a_session(replicas: Replicas) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        url = stream_url(replicas, session)
        stranger = {"Authorization": f"Bearer {token_for(new_wallet())}"}
        assert (await client.get(url, headers=stranger)).status_code == 404
        assert (await client.get(url)).status_code == 401
        missing = url.replace(session["id"], "ors_" + "0" * 26)
        assert (await client.get(missing, headers=replicas.headers)).status_code == 404


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_serve_processes_on_postgres(
    database_url: str, stripe: RunningStripe, project_root: Path
) -> None:
    """The contract's case: two `onramp serve` processes; a stream on one sees a webhook
    applied by the other within a second."""
    env = service_env(database_url, stripe)
    with serving(project_root, **env) as first, serving(project_root, **env) as second:
        replicas = Replicas([first, second], new_wallet())
        await test_a_stream_sees_changes_made_by_another_replica(replicas)
