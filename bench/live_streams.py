"""Live status at scale: 2,000 open event streams on one `onramp serve` worker.

Measures how long one change takes to reach every stream, and the worker's resident
memory with the streams open, against a bare ASGI app that fans the same streams out
from memory (bench/baseline_streams.py), in the same run. Two shapes:

- one session watched by all 2,000 streams (one notice, read once, 2,000 writes);
- 2,000 sessions, one stream each, all changed by one UPDATE (2,000 notices and reads).

The change is an UPDATE on PostgreSQL (the trigger sends the notice as it commits); the
baseline's is a POST. Goal (issue 18): 99% of streams within 1 s, under 250 MiB RSS.

    .venv/bin/python bench/live_streams.py [--streams 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.harness import fresh_database, rss_mib, server
from bench.stack import baseline_command, service_command, service_env, wallet_token
from service.onramp.models import SessionRow

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
MARKER = b"event: session"
GOAL_WITHIN_SECONDS = 1.0
GOAL_MIB = 250.0


class Stream:
    """One open event stream, counting the session events it has received."""

    def __init__(self) -> None:
        self.events = 0
        self.arrived: list[float] = []
        self.second = asyncio.Event()  # the first change arrived

    async def follow(self, url: str, headers: dict[str, str], opened: asyncio.Semaphore) -> None:
        parts = urlsplit(url)
        async with opened:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            lines = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
        tail = b""
        while chunk := await reader.read(65536):
            seen = tail + chunk
            found = seen.count(MARKER)
            if found:
                now = time.perf_counter()
                self.events += found
                self.arrived += [now] * found
                if self.events >= 2:
                    self.second.set()
            tail = seen[-(len(MARKER) - 1) :]
        writer.close()


async def hold_streams(
    urls: list[str],
    headers: dict[str, str],
    change: Callable[[], Coroutine[Any, Any, None]],
    rss: Callable[[], float],
) -> dict[str, Any]:
    """Open every stream, wait for its first event, change, time the second."""
    opened = asyncio.Semaphore(100)
    streams = [Stream() for _ in urls]
    tasks = [
        asyncio.create_task(stream.follow(url, headers, opened))
        for stream, url in zip(streams, urls, strict=True)
    ]
    deadline = time.monotonic() + 120
    while any(s.events < 1 for s in streams):
        if time.monotonic() > deadline or any(t.done() for t in tasks):
            raise RuntimeError(f"{sum(s.events < 1 for s in streams)} streams never opened")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    memory = rss()
    started = time.perf_counter()
    await change()
    async with asyncio.timeout(60):
        await asyncio.gather(*(stream.second.wait() for stream in streams))
    delays = sorted(s.arrived[1] - started for s in streams)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": len(streams),
        "rss_mib": round(memory, 1),
        "p50_ms": round(statistics.median(delays) * 1000, 1),
        "p99_ms": round(delays[int(len(delays) * 0.99) - 1] * 1000, 1),
        "max_ms": round(delays[-1] * 1000, 1),
        "within_1s": round(sum(d <= GOAL_WITHIN_SECONDS for d in delays) / len(delays), 4),
    }


def seed(database_url: str, count: int) -> list[str]:
    rows = [
        SessionRow(WALLET, "100.00", "usd", "musd", "mezo", stripe_session_id=f"cos_live_{n}")
        for n in range(count)
    ]
    with (
        psycopg.connect(database_url, autocommit=True) as connection,
        connection.cursor() as cursor,
    ):
        cursor.executemany(
            "INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, livemode, status,"
            " source_amount, source_currency, destination_currency, destination_network,"
            " delivery_status, delivery_confirmations, created_at, updated_at) VALUES"
            " (%s, %s, %s, false, 'initialized', '100.00', 'usd', 'musd', 'mezo', 'not_started',"
            " 0, now(), now())",
            [(r.id, r.wallet_address, r.stripe_session_id) for r in rows],
        )
    return [r.id for r in rows]


def update(database_url: str, ids: list[str]) -> Callable[[], Coroutine[Any, Any, None]]:
    async def change() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
            await c.execute(
                "UPDATE onramp_sessions SET status = 'requires_payment', updated_at = now()"
                " WHERE id = ANY(%s)",
                (ids,),
            )

    return change


def post(url: str) -> Callable[[], Coroutine[Any, Any, None]]:
    async def change() -> None:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 0"
        writer.write(f"{head}\r\n\r\n".encode())
        await writer.drain()
        await reader.readline()
        writer.close()

    return change


def measure(streams: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with fresh_database() as database_url:
        ids = seed(database_url, streams)
        env = service_env(database_url, "http://127.0.0.1:9") | {"LOG_LEVEL": "warning"}
        with server(service_command(1), env, work / "service.log") as service:
            headers = {
                "Authorization": f"Bearer {wallet_token(WALLET)}",
                "Accept": "text/event-stream",
            }
            events = f"{service.url}/api/v1/onramp/sessions/{{}}/events"
            pid = service.worker_pids()[0]
            results["service, one session"] = asyncio.run(
                hold_streams(
                    [events.format(ids[0])] * streams,
                    headers,
                    update(database_url, ids[:1]),
                    lambda: rss_mib(pid),
                )
            )
            with psycopg.connect(database_url, autocommit=True) as c:
                c.execute("UPDATE onramp_sessions SET status = 'initialized'")
            results["service, one session each"] = asyncio.run(
                hold_streams(
                    [events.format(i) for i in ids],
                    headers,
                    update(database_url, ids),
                    lambda: rss_mib(pid),
                )
            )
    baseline = baseline_command(1, "bench.baseline_streams:app")
    with server(baseline, {}, work / "baseline.log") as bare:
        pid = bare.worker_pids()[0]
        results["baseline, one key"] = asyncio.run(
            hold_streams(
                [f"{bare.url}/events/one"] * streams,
                {},
                post(f"{bare.url}/change/one"),
                lambda: rss_mib(pid),
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onramp-live-bench-") as folder:
        results = measure(args.streams, Path(folder))
    print(json.dumps(results, indent=2))
    service = results["service, one session"], results["service, one session each"]
    bare = results["baseline, one key"]
    for name, figures in zip(("one session", "one session each"), service, strict=False):
        ratio = figures["p99_ms"] / max(bare["p99_ms"], 0.1)
        print(
            f"{name}: p99 {figures['p99_ms']} ms ({ratio:.1f}x the baseline's),"
            f" {figures['within_1s']:.2%} within 1 s, RSS {figures['rss_mib']} MiB"
            f" ({figures['rss_mib'] / bare['rss_mib']:.1f}x)"
        )
    met = all(f["within_1s"] >= 0.99 and f["rss_mib"] < GOAL_MIB for f in service)
    print("goal (99% within 1 s, under 250 MiB):", "met" if met else "MISSED")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
