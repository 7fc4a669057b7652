"""What a webhook event costs the service in-process: the real app (`create_app`) on
PostgreSQL, called as ASGI with signed events that each move a session, no HTTP server
or load generator in the process.

    .venv/bin/python -m bench.webhook_cpu [--events 2000] [--repeats 5]
    .venv/bin/python -m bench.webhook_cpu --callgrind

By default: the process's CPU time per event, 8 requests in flight, for each repeat
(after a warm-up) and their median. With PROFILE_OUT=<file> one more batch runs under
cProfile into that file; SERVICE_LOG=<file> keeps the service's log.

`--callgrind`: instructions per event, one request at a time, counted by valgrind's
callgrind as bench/page_instructions.py does, `(I(60) - I(10)) / 50`: start-up and
warm-up cancel out, and the count moves far less than time on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import in_process
from bench.harness import fresh_database
from bench.stack import service_env
from bench.webhooks import seed_sessions, signed_events

CONCURRENCY = 8
COUNTS = (10, 60)
WARM_UP = 40
PATH = "/api/v1/webhooks/stripe"

Request = tuple[bytes, bytes]


def requests(url: str, prefix: str, count: int, work: Path) -> list[Request]:
    """`count` sessions seeded, and their `2 * count` signed events: (body, signature)."""
    seed_sessions(url, prefix, count)
    path = signed_events(prefix, 0, count, work / f"{prefix}.jsonl")
    return read_requests(path)


def read_requests(path: Path) -> list[Request]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["body"].encode(), r["headers"]["Stripe-Signature"].encode()) for r in lines]


async def call(app: Any, body: bytes, signature: bytes) -> int:
    headers = {"host": "127.0.0.1", "content-type": "application/json"}
    headers |= {"content-length": str(len(body)), "stripe-signature": signature.decode()}
    status, _ = await in_process.call(app, in_process.scope("POST", PATH, headers), body)
    return status


async def drive(app: Any, batch: list[Request], concurrency: int = CONCURRENCY) -> float:
    """CPU seconds per event for `batch`, `concurrency` requests in flight."""
    queue = iter(batch)

    async def client() -> None:
        for body, signature in queue:
            status = await call(app, body, signature)
            assert status == 200, status

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - started) / len(batch)


def service(url: str) -> Any:
    from service.app import create_app
    from service.settings import Settings

    os.environ.update(service_env(url, "http://127.0.0.1:9"))
    return create_app(Settings.from_env())


async def cpu_times(url: str, events: int, repeats: int, work: Path) -> list[float]:
    app = service(url)
    # Started in this loop: a test client starts the app in a loop of its own (a thread),
    # and the pool's lock, once waited on there, fails every wait here.
    async with app.lifespan():
        await drive(app, requests(url, "cos_bench_warm_", events // 4, work))
        gc.collect()
        gc.freeze()
        figures = []
        for repeat in range(repeats):
            batch = requests(url, f"cos_bench_r{repeat}_", events // 2, work)
            figures.append(await drive(app, batch))
        if os.environ.get("PROFILE_OUT"):
            import cProfile

            batch = requests(url, "cos_bench_prof_", events // 2, work)
            with cProfile.Profile() as profiler:
                await drive(app, batch)
            profiler.dump_stats(os.environ["PROFILE_OUT"])
    return figures


async def counted(url: str, warm: Path, measured: Path) -> None:
    """The inner run under callgrind: warm up, then the measured events one at a time."""
    app = service(url)
    async with app.lifespan():
        await drive(app, read_requests(warm), concurrency=1)
        await drive(app, read_requests(measured), concurrency=1)


def instructions(url: str, work: Path, count: int) -> int:
    """Callgrind's total for a run of `count` events after the warm-up."""
    prefix = f"cos_bench_c{count}_"
    seed_sessions(url, prefix, WARM_UP // 2 + count)
    warm = signed_events(prefix, 0, WARM_UP // 2, work / f"{prefix}warm.jsonl")
    # Each session moves twice: `count` events are the two moves of count / 2 sessions.
    measured = signed_events(prefix, WARM_UP // 2, count // 2, work / f"{prefix}.jsonl")
    inner = ["--inner", url, str(warm), str(measured)]
    return in_process.callgrind_instructions([sys.executable, "-m", "bench.webhook_cpu", *inner])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--inner", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    # The service logs to whatever sys.stderr is: a file, as a platform collects it.
    sys.stderr = Path(os.environ.get("SERVICE_LOG", os.devnull)).open("w")  # noqa: SIM115
    if args.inner:
        url, warm, measured = args.inner
        uvloop.run(counted(url, Path(warm), Path(measured)))
        return
    with fresh_database() as url, tempfile.TemporaryDirectory() as work:
        if args.callgrind:
            few, many = (instructions(url, Path(work), count) for count in COUNTS)
            per_event = (many - few) / (COUNTS[1] - COUNTS[0])
            print(f"{per_event:,.0f} instructions an event ({few:,} for {COUNTS[0]}, {many:,})")
            return
        figures = uvloop.run(cpu_times(url, args.events, args.repeats, Path(work)))
    each = ", ".join(f"{f * 1e6:.0f}" for f in figures)
    print(f"CPU per event (us): {each}; median {statistics.median(figures) * 1e6:.0f}")


if __name__ == "__main__":
    main()
