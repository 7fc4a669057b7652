"""What the live status tests share: real HTTP servers in threads (replicas on one
database), and Server-Sent Events read as a browser's EventSource reads them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import Litestar

from service.app import create_app
from service.demo.local_servers import serve_in_thread
from service.settings import Settings
from tests.onramp.conftest import token_for
from tests.support.webhooks import encode, onramp_event, sign


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    retry: str | None = None
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
            if current.data or current.comments or current.event or current.retry:
                yield current
            current = Event()
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
            elif name in ("id", "event", "retry"):
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
        """Stripe's news, delivered to the last replica (the second, when there are two)."""
        body = encode(
            onramp_event(
                session["stripeSessionId"],
                status,
                transaction_id="0x" + "ab" * 32,
                destination_amount="98.49",
            )
        )
        response = await client.post(
            f"{self.urls[-1]}/api/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text


@contextmanager
def replicas_in_threads(settings: Settings, count: int = 2) -> Iterator[list[str]]:
    with serving_apps([create_app(settings) for _ in range(count)]) as urls:
        yield urls


@contextmanager
def serving_apps(apps: list[Litestar]) -> Iterator[list[str]]:
    """Each app on a real HTTP server in a thread of its own, until the block ends."""
    started = [serve_in_thread(app) for app in apps]
    try:
        yield [url for url, _, _ in started]
    finally:
        for _, server, _thread in started:
            server.should_exit = True
        for _, _, thread in started:
            thread.join(timeout=15)


def stream_url(replicas: Replicas, session: dict[str, Any], replica: int = 0) -> str:
    return f"{replicas.urls[replica]}/api/v1/onramp/sessions/{session['id']}/events"


async def ticket_for(
    client: httpx.AsyncClient, replicas: Replicas, session: dict[str, Any]
) -> dict[str, Any]:
    """A stream ticket for the session, asked of the first replica with the owner's token."""
    response = await client.post(
        f"{stream_url(replicas, session)}/ticket", headers=replicas.headers
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def next_session_event(events: AsyncIterator[Event], within: float = 5) -> Event:
    async with asyncio.timeout(within):
        async for event in events:
            if event.event == "session":
                return event
    raise AssertionError("the stream ended")
