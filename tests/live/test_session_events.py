"""Live status over Server-Sent Events, through real HTTP servers on both databases: the
stream sees changes made by another replica, resumes from `Last-Event-ID`, keeps the
connection alive and ends once the session is settled."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.demo.local_servers import serve_in_thread
from service.settings import Settings
from tests.onramp.conftest import new_wallet, token_for
from tests.support.processes import service_env, serving
from tests.support.stripe import RunningStripe
from tests.support.webhooks import encode, onramp_event, sign


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def session(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.data)
        return found


async def events_of(response: httpx.Response) -> AsyncIterator[Event]:
    """Server-Sent Events as a browser's EventSource parses them (comments kept apart)."""
    current = Event()
    async for line in response.aiter_lines():
        if line == "":
            if current.data or current.comments or current.event:
                yield current
            current = Event()
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
            elif name in ("id", "event"):
                setattr(current, name, value)


@dataclass
class Replicas:
    """Two servers on one database, as two replicas behind a load balancer."""

    urls: list[str]
    wallet: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(self.wallet)}"}

    async def create(self, client: httpx.AsyncClient) -> dict[str, Any]:
        response = await client.post(
            f"{self.urls[0]}/api/v1/onramp/sessions",
            json={"walletAddress": self.wallet, "sourceAmount": "100.00"},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def webhook(
        self, client: httpx.AsyncClient, session: dict[str, Any], status: str
    ) -> None:
        """Stripe's news, delivered to the second replica."""
        body = encode(
            onramp_event(
                session["stripeSessionId"],
                status,
                transaction_id="0x" + "ab" * 32,
                destination_amount="98.49",
            )
        )
        response = await client.post(
            f"{self.urls[1]}/api/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text


@contextmanager
def replicas_in_threads(settings: Settings) -> Iterator[list[str]]:
    started = [serve_in_thread(create_app(settings)) for _ in range(2)]
    try:
        yield [url for url, _, _ in started]
    finally:
        for _, server, _thread in started:
            server.should_exit = True
        for _, _, thread in started:
            thread.join(timeout=15)


@pytest.fixture
def live_settings(
    make_settings: Callable[..., Settings], stripe: RunningStripe, database_url: str
) -> Callable[..., Settings]:
    def build(**env: str) -> Settings:
        return make_settings(
            **service_env(database_url, stripe, LIVE_HEARTBEAT_SECONDS="0.3", **env)
        )

    return build


@pytest.fixture
def replicas(live_settings: Callable[..., Settings]) -> Iterator[Replicas]:
    with replicas_in_threads(live_settings()) as urls:
        yield Replicas(urls, new_wallet())


def stream_url(replicas: Replicas, session: dict[str, Any]) -> str:
    return f"{replicas.urls[0]}/api/v1/onramp/sessions/{session['id']}/events"


async def next_session_event(events: AsyncIterator[Event], within: float = 5) -> Event:
    async with asyncio.timeout(within):
        async for event in events:
            if event.event == "session":
                return event
    raise AssertionError("the stream ended")


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
