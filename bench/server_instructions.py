"""What a read or a list costs each side's whole server process, counted by callgrind.

    .venv/bin/python bench/server_instructions.py read|list [--requests N] [--concurrency C]

`bench/route_instructions.py` counts the app called in-process; this counts the servers
as `bench/run` starts them (`onramp serve --workers 1` and the baseline on uvicorn), each
under `valgrind --tool=callgrind` with instrumentation off until both are warm. Then, one
side at a time, it switches the count on, sends N requests with C in flight from this
process, and then counts the process idle for as long: the difference, divided by N, has
uvicorn's parsing and writing and the event loop in it, as `bench/run`'s CPU per request
does, without the timers and pollers that valgrind's slowness would multiply. Under
valgrind a server runs some fifty times slower, so start-up takes minutes and N should
stay in the hundreds.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path[0] = str(Path(__file__).resolve().parent.parent)
from bench import in_process, reads
from bench.harness import fresh_database, server
from bench.stack import (
    baseline_command,
    baseline_env,
    service_command,
    service_env,
    wallet_token,
)

WARM_UP = 100
VALGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]


async def _send(url: str, headers: dict[str, str], paths: list[str], concurrency: int) -> None:
    async with aiohttp.ClientSession(url, headers=headers) as client:

        async def one_client(first: int) -> None:
            for path in paths[first::concurrency]:
                async with client.get(path) as response:
                    assert response.status == 200, response.status
                    await response.read()

        await asyncio.gather(*(one_client(first) for first in range(concurrency)))


def _counted(work: Path, name: str) -> int:
    """The instructions of one of callgrind's dumps (`name`, or `name` and a thread)."""
    (dump,) = [path for path in work.glob(f"{name}*") if path.name.split(".")[-1].isdigit()]
    totals = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    assert totals is not None
    return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("route", choices=["read", "list"])
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-server-instructions-"))
    results = {}
    with fresh_database() as url:
        wallet, ids = next(iter(reads.seed(url).items()))
        if args.route == "read":
            paths = [f"{reads.PATH}/{ids[n % len(ids)]}" for n in range(args.requests)]
        else:
            paths = [reads.PATH] * args.requests
        sides = {
            "service": (
                service_command(1),
                {**service_env(url, "http://127.0.0.1:9"), "DELIVERY_WORKER": "false"},
                {"Authorization": f"Bearer {wallet_token(wallet)}"},
            ),
            "baseline": (
                baseline_command(1),
                baseline_env(url, "http://127.0.0.1:9"),
                {"X-Wallet-Address": wallet},
            ),
        }
        for side, (command, env, headers) in sides.items():
            out = work / f"{side}.callgrind"
            valgrind = [*VALGRIND, f"--callgrind-out-file={out}", *command]
            with server(valgrind, env, work / f"{side}.log", startup_seconds=600) as running:
                pid = running.process.pid
                asyncio.run(_send(running.url, headers, paths[:WARM_UP], args.concurrency))
                host = env.get("HOST")
                in_process.callgrind_control(pid, "--instr=on", host=host)
                started = time.monotonic()
                asyncio.run(_send(running.url, headers, paths, args.concurrency))
                in_process.callgrind_control(pid, "--dump=requests", host=host)
                time.sleep(time.monotonic() - started)
                in_process.callgrind_control(pid, "--dump=idle", host=host)
                in_process.callgrind_control(pid, "--instr=off", host=host)
            busy, idle = (_counted(work, f"{side}.callgrind.{n}") for n in (1, 2))
            results[side] = (busy - idle) / args.requests
            print(
                f"{side}: {results[side]:,.0f} instructions a request"
                f" ({busy:,} with the requests, {idle:,} idle as long)",
                flush=True,
            )
    print(f"service / baseline: {results['service'] / results['baseline']:.2f}")


if __name__ == "__main__":
    main()
