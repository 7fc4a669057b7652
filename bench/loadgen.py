"""A load generator that is not the bottleneck: aiohttp, one process, fixed concurrency.

Reads requests (method, path, headers, body) from a JSON-lines file, sends them in a
loop for `--seconds` with `--concurrency` workers, and prints throughput and latency
percentiles as JSON. Run it in its own process, beside the server under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp


async def run(
    base: str, requests: list[dict[str, Any]], concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cursor = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector) as http:

        async def worker() -> None:
            nonlocal cursor
            while time.perf_counter() < deadline:
                request = requests[cursor % len(requests)]
                cursor += 1
                started = time.perf_counter()
                async with http.request(
                    request["method"],
                    request["path"],
                    data=request.get("body", "").encode(),
                    headers=request.get("headers", {}),
                ) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "throughput": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else None,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("requests", type=Path)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    requests = [json.loads(line) for line in args.requests.read_text().splitlines() if line]
    print(json.dumps(asyncio.run(run(args.base, requests, args.concurrency, args.seconds))))


if __name__ == "__main__":
    main()
