"""Live status behind the reverse proxies of docs/proxies: Debian's HAProxy and nginx,
run from those very files, in front of two `onramp serve` processes on one PostgreSQL.
A stream's first event comes through at once, and a replica killed under its streams
costs each of them one reconnect, with `Last-Event-ID`, to the replica still alive."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from annotated_types import Le

from service.settings.groups import LiveSettings
from tests.live.streams import Replicas, events_of
from tests.onramp.conftest import new_wallet
from tests.support.processes import OnrampProcess, service_env
from tests.support.proxies import HAPROXY_CONFIG, NGINX_CONFIG, proxy_before
from tests.support.stripe import RunningStripe

# From the request sent to the first `event: session` bytes: the best of TRIES, so that a
# busy machine's pauses do not count, while a proxy that holds every stream's first bytes
# (HAProxy without `option http-no-delay`: about 200 ms each time) still fails.
FIRST_EVENT_WITHIN_SECONDS = 0.05
TRIES = 7
STREAMS = 4


@dataclass
class Proxied:
    proxy: str
    url: str
    replicas: list[OnrampProcess]


@pytest.fixture(params=["haproxy", "nginx"])
def proxied(
    request: pytest.FixtureRequest, tmp_path: Path, stripe: RunningStripe, migrated: dict[str, str]
) -> Iterator[Proxied]:
    env = service_env(
        migrated["postgresql"], stripe, DELIVERY_WORKER="false", TRUSTED_PROXIES="127.0.0.1"
    )
    replicas = [OnrampProcess(tmp_path, "serve", **env) for _ in range(2)]
    try:
        for replica in replicas:
            replica.start()
        backends = [f"127.0.0.1:{replica.port}" for replica in replicas]
        with proxy_before(request.param, backends, tmp_path) as url:
            yield Proxied(request.param, url, replicas)
    finally:
        for replica in replicas:
            if replica.process is not None:
                replica.kill()


async def test_a_streams_first_event_arrives_within_50_ms_through_the_proxy(
    proxied: Proxied, record_figures: Callable[..., None]
) -> None:
    watcher = Replicas([proxied.url], new_wallet())
    async with httpx.AsyncClient(timeout=10) as client:
        session = await watcher.create(client)
    path = f"/api/v1/onramp/sessions/{session['id']}/events"
    seconds = [await first_event_after(proxied.url, path, watcher.headers) for _ in range(TRIES)]
    assert min(seconds) < FIRST_EVENT_WITHIN_SECONDS, seconds
    record_figures(
        proxy=proxied.proxy,
        best_ms=round(min(seconds) * 1000, 1),
        median_ms=round(statistics.median(seconds) * 1000, 1),
    )


async def first_event_after(base_url: str, path: str, headers: dict[str, str]) -> float:
    """Seconds from the request sent to the stream's first `event: session` line, on a
    connection of its own."""
    address = urlsplit(base_url)
    assert address.hostname is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {address.netloc}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join([*lines, "Connection: close", "", ""])).encode())
    await writer.drain()
    sent = time.perf_counter()
    received = b""
    try:
        async with asyncio.timeout(10):
            while b"event: session" not in received:
                chunk = await reader.read(65536)
                assert chunk, received
                received += chunk
        return time.perf_counter() - sent
    finally:
        writer.close()


@dataclass
class Follower:
    """One client following a session as an EventSource does: on a dropped connection
    it reconnects at once, saying with `Last-Event-ID` which event it holds."""

    url: str
    headers: dict[str, str]
    statuses: list[str] = field(default_factory=list)
    drops: int = 0
    last_id: str | None = None
    first_seen: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow_until(self, client: httpx.AsyncClient, status: str) -> None:
        while not self.statuses or self.statuses[-1] != status:
            resume = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                async with client.stream("GET", self.url, headers=self.headers | resume) as got:
                    assert got.status_code == 200, await got.aread()
                    async for event in events_of(got):
                        if event.event == "session":
                            self.statuses.append(event.session["status"])
                            self.last_id = event.id
                            self.first_seen.set()
                            if event.session["status"] == status:
                                return
            except httpx.TransportError:
                self.drops += 1
                self.dropped.set()


async def test_a_replica_killed_under_its_streams_costs_each_one_reconnect(
    proxied: Proxied, record_figures: Callable[..., None]
) -> None:
    watcher = Replicas([proxied.url], new_wallet())
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client:
        session = await watcher.create(client)
        url = f"{proxied.url}/api/v1/onramp/sessions/{session['id']}/events"
        followers = [Follower(url, watcher.headers) for _ in range(STREAMS)]
        following = [
            asyncio.create_task(f.follow_until(client, "requires_payment")) for f in followers
        ]
        async with asyncio.timeout(15):
            await asyncio.gather(*(f.first_seen.wait() for f in followers))
        assert all(f.statuses == ["initialized"] for f in followers)

        # The proxy spreads open streams by count: each replica holds some of them.
        await asyncio.to_thread(proxied.replicas[0].kill)
        killed = time.monotonic()
        async with asyncio.timeout(15):
            drops = [asyncio.create_task(f.dropped.wait()) for f in followers]
            await asyncio.wait(drops, return_when=asyncio.FIRST_COMPLETED)
        for waiting in drops:
            waiting.cancel()
        await watcher.webhook(client, session, "requires_payment")
        async with asyncio.timeout(30):
            await asyncio.gather(*following)
        resumed_after = time.monotonic() - killed

        # The dead replica is out: nothing through the proxy fails any more.
        ready = [(await client.get(f"{proxied.url}/ready")).status_code for _ in range(6)]
    dropped = [f for f in followers if f.drops]
    assert 0 < len(dropped) < STREAMS, [f.drops for f in followers]
    assert all(f.drops == 1 for f in dropped)
    # Each stream went on where it was: the change it had not seen, nothing twice.
    assert all(f.statuses == ["initialized", "requires_payment"] for f in followers)
    assert ready == [200] * 6
    record_figures(
        proxy=proxied.proxy,
        streams_resumed=len(dropped),
        seconds_from_kill_to_change=round(resumed_after, 2),
    )


def test_the_proxies_keep_a_quiet_stream_open_between_heartbeats() -> None:
    """Each idle limit of the proxy files is at least twice the longest heartbeat the
    service allows, so a stream never ends for being quiet between two of them."""
    field_info = LiveSettings.model_fields["heartbeat_seconds"]
    longest_heartbeat = next(m.le for m in field_info.metadata if isinstance(m, Le))
    assert isinstance(longest_heartbeat, int | float)
    haproxy = seconds_of(HAPROXY_CONFIG.read_text(), r"timeout (?:client|server)")
    nginx = seconds_of(NGINX_CONFIG.read_text(), r"proxy_(?:read|send)_timeout")
    assert len(haproxy) == 2
    assert len(nginx) == 2
    assert min(haproxy + nginx) >= 2 * longest_heartbeat


def seconds_of(config: str, directive: str) -> list[float]:
    found = re.findall(rf"^\s*{directive}\s+(\d+)(s|m)\s*;?\s*$", config, re.MULTILINE)
    return [float(number) * (60 if unit == "m" else 1) for number, unit in found]
