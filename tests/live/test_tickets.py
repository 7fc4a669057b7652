"""Stream tickets, through real HTTP servers on both databases: what a browser's
EventSource opens a stream with. One stream per ticket, 60 s, this session and this
wallet only, shared by replicas (two racing for one ticket open one stream), and never
in a log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from service.app import create_app
from service.columns import utcnow
from service.live.provider import LiveServices
from service.settings import Settings
from tests.live.streams import (
    Replicas,
    events_of,
    next_session_event,
    serving_apps,
    stream_url,
    ticket_for,
)
from tests.onramp.conftest import new_wallet, token_for
from tests.support.processes import OnrampProcess, service_env
from tests.support.stripe import RunningStripe


@dataclass
class Clock:
    """The time the servers' tickets go by, moved on by the test instead of sleeping."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Ticketing:
    replicas: Replicas
    apps: list[Litestar]
    clock: Clock


@pytest.fixture
def ticketing(live_settings: Callable[..., Settings]) -> Iterator[Ticketing]:
    clock = Clock(utcnow())
    apps = [create_app(live_settings()) for _ in range(2)]
    for app in apps:
        LiveServices.of(app.state).tickets.clock = clock
    with serving_apps(apps) as urls:
        yield Ticketing(Replicas(urls, new_wallet()), apps, clock)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "unauthorized"
    assert "ticket" in problem["detail"]


async def test_a_ticket_opens_one_stream_without_a_header(ticketing: Ticketing) -> None:
    replicas = ticketing.replicas
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        issued = await ticket_for(client, replicas, session)
        expires_at = datetime.fromisoformat(issued["expiresAt"])
        assert expires_at - ticketing.clock.now == timedelta(seconds=60)
        url = stream_url(replicas, session)
        async with client.stream("GET", url, params={"ticket": issued["ticket"]}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await next_session_event(events_of(response))
            assert first.session["id"] == session["id"]
            # The stream is the ticket's wallet's: it counts against that wallet's cap.
            slots = LiveServices.of(ticketing.apps[0].state).slots
            assert slots.count(wallet=replicas.wallet) == 1
        # Used once: not again, on either replica.
        for replica in (0, 1):
            again = await client.get(
                stream_url(replicas, session, replica), params={"ticket": issued["ticket"]}
            )
            assert_refused(again)


async def test_a_ticket_lasts_60_seconds(ticketing: Ticketing) -> None:
    replicas, clock = ticketing.replicas, ticketing.clock
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        url = stream_url(replicas, session)
        late = await ticket_for(client, replicas, session)
        timely = await ticket_for(client, replicas, session)
        clock.now += timedelta(seconds=59)
        async with client.stream("GET", url, params={"ticket": timely["ticket"]}) as response:
            assert response.status_code == 200
        clock.now += timedelta(seconds=1)
        assert_refused(await client.get(url, params={"ticket": late["ticket"]}))


async def test_a_ticket_is_bound_to_its_session_and_its_wallet(ticketing: Ticketing) -> None:
    replicas = ticketing.replicas
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        other = await replicas.create(client)
        issued = await ticket_for(client, replicas, session)
        # Another session of the same wallet: refused, and the ticket is not spent.
        assert_refused(
            await client.get(stream_url(replicas, other), params={"ticket": issued["ticket"]})
        )
        async with client.stream(
            "GET", stream_url(replicas, session), params={"ticket": issued["ticket"]}
        ) as response:
            assert response.status_code == 200
        # Only the owner gets a ticket; an unknown session is as not found.
        ticket_url = f"{stream_url(replicas, session)}/ticket"
        stranger = {"Authorization": f"Bearer {token_for(new_wallet())}"}
        assert (await client.post(ticket_url, headers=stranger)).status_code == 404
        assert (await client.post(ticket_url)).status_code == 401
        missing = ticket_url.replace(session["id"], "ors_" + "0" * 26)
        assert (await client.post(missing, headers=replicas.headers)).status_code == 404
        # A made-up ticket, and none at all.
        url = stream_url(replicas, session)
        assert_refused(await client.get(url, params={"ticket": "est_" + "A" * 43}))
        assert (await client.get(url)).status_code == 401


async def test_a_used_ticket_is_refused_to_its_streams_reconnect_too(
    ticketing: Ticketing,
) -> None:
    """An EventSource reconnects with the same URL once a stream ends: its used ticket
    is refused (401, so the client stops) and never opens a second stream."""
    replicas = ticketing.replicas
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        issued = await ticket_for(client, replicas, session)
        url = stream_url(replicas, session)
        async with client.stream("GET", url, params={"ticket": issued["ticket"]}) as response:
            events = events_of(response)
            await next_session_event(events)
            await replicas.webhook(client, session, "rejected")
            assert (await next_session_event(events)).session["status"] == "rejected"
        assert_refused(await client.get(url, params={"ticket": issued["ticket"]}))


async def test_two_replicas_racing_for_one_ticket_open_one_stream(ticketing: Ticketing) -> None:
    replicas = ticketing.replicas
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)

        async def open_on(replica: int, ticket: str) -> int:
            url = stream_url(replicas, session, replica)
            async with client.stream("GET", url, params={"ticket": ticket}) as response:
                return response.status_code

        for _ in range(5):
            ticket = (await ticket_for(client, replicas, session))["ticket"]
            answers = await asyncio.gather(open_on(0, ticket), open_on(1, ticket))
            assert sorted(answers) == [200, 401]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_tickets_never_reach_the_logs(
    database_url: str, stripe: RunningStripe, tmp_path: Path
) -> None:
    """The access line, refusals and debug records of `onramp serve` hold no ticket,
    used, refused or malformed."""
    server = OnrampProcess(
        tmp_path, "serve", **service_env(database_url, stripe, LOG_LEVEL="debug")
    )
    server.start()
    tickets: list[str] = []
    try:
        replicas = Replicas([server.url], new_wallet())
        async with httpx.AsyncClient(timeout=10) as client:
            session = await replicas.create(client)
            url = stream_url(replicas, session)
            for _ in range(2):
                tickets.append((await ticket_for(client, replicas, session))["ticket"])
            async with client.stream("GET", url, params={"ticket": tickets[0]}) as response:
                await next_session_event(events_of(response))
            answers: list[Any] = [
                await client.get(url, params={"ticket": tickets[0]}),  # used
                await client.get(
                    url.replace(session["id"], "ors_x"), params={"ticket": tickets[1]}
                ),
                await client.get(url, params={"ticket": tickets[1] * 2}),  # too long: 400
            ]
            assert [a.status_code for a in answers] == [401, 401, 400]
    finally:
        server.stop()
    log = server.output()
    assert session["id"] in log  # the log is there, and names the requests
    for ticket in tickets:
        assert ticket not in log
        assert ticket[4:20] not in log
