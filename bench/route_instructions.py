"""What one request of a session route costs the service's own process, counted in-process.

    .venv/bin/python bench/route_instructions.py create|read|list [--baseline] [--cpu N]
        [--concurrency N]

The real app (`create_app`, the benchmark's settings, JSON logs to a file, the delivery
worker off) is called as an ASGI application on uvloop, one request after the other:
no HTTP server, no load generator, nothing else in the process. Creates go to the
Stripe stand-in in a process of its own; every route reads and writes PostgreSQL.

By default it runs under `valgrind --tool=callgrind` with instrumentation off through
start-up and a warm-up (imports alone are 27 billion instructions), switches it on
(`callgrind_control`) for 50 requests and reports their instructions divided by 50: the
count barely moves with other load on the machine. `--cpu N` instead times N requests
with the process's CPU clock (quicker, noisier; `--profile tottime` profiles them).
Uvicorn's own share of a request (parsing, writing) is in neither. `--baseline` counts
the baseline app (bench/baseline.py) on the same route instead, so that the two counts
divide into the share of the work that is the service's own. `--concurrency N` keeps N
requests in flight at once, as the load generator's clients do.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The repository instead of bench/, whose profile.py would hide the standard library's.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
import cProfile
import pstats

from bench import in_process, reads, sessions
from bench.harness import fresh_database, server
from bench.stack import STRIPE_COMMAND, baseline_env, service_env, wallet_token

MEASURED = 50
WARM_UP = 20
Call = Callable[[int], tuple[dict[str, Any], bytes]]


def requests_for(route: str, plan: dict[str, Any]) -> Call:
    """The n-th request of the route: its scope and body."""
    wallet = plan["wallet"]
    auth = {"Authorization": f"Bearer {plan['token']}", "Host": "127.0.0.1:8000"}
    if plan.get("baseline"):
        auth = {"X-Wallet-Address": wallet, "Host": "127.0.0.1:8000"}
    if route == "create":
        body = json.dumps({"walletAddress": wallet, "sourceAmount": "100.00"}).encode()

        def create(n: int) -> tuple[dict[str, Any], bytes]:
            headers = {
                **auth,
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "Idempotency-Key": f"instructions-{plan['run']}-{n}",
            }
            return in_process.scope("POST", sessions.PATH, headers), body

        return create
    if route == "read":
        ids = plan["ids"]
        return lambda n: (in_process.scope("GET", f"{reads.PATH}/{ids[n % len(ids)]}", auth), b"")
    return lambda n: (in_process.scope("GET", reads.PATH, auth), b"")


async def _run(route: str, plan: dict[str, Any], count: int, counted: bool) -> float:
    if plan.get("baseline"):
        from bench.baseline import app
    else:
        from service.app import create_app

        app = create_app()
    call = requests_for(route, plan)
    async with app.lifespan():
        if plan.get("baseline"):
            from bench.baseline_pool import pool

            await pool.wait()  # its connections are opened in the background
            gc.collect()  # as the service does after start-up (service/app.py)
            gc.freeze()
        for n in range(WARM_UP):
            status, _ = await in_process.call(app, *call(n))
            assert status in (200, 201), status
        if counted:
            in_process.callgrind_control(os.getpid(), "--instr=on")
        profile = cProfile.Profile(time.process_time) if plan.get("profile") else None
        started = time.process_time()
        if profile:
            profile.enable()
        await _requests(app, call, range(WARM_UP, WARM_UP + count), plan.get("concurrency", 1))
        if profile:
            profile.disable()
            pstats.Stats(profile, stream=sys.stdout).sort_stats(plan["profile"]).print_stats(60)
        return time.process_time() - started


async def _requests(app: Any, call: Call, numbers: range, concurrency: int) -> None:
    """The requests `numbers`, `concurrency` of them in flight at a time (as the load
    generator keeps its clients busy); with 1, one after the other."""

    async def client(first: int) -> None:
        for n in numbers[first::concurrency]:
            await in_process.call(app, *call(n))

    await asyncio.gather(*(client(first) for first in range(concurrency)))


def child(route: str, plan: dict[str, Any], count: int, counted: bool = False) -> float:
    import uvloop

    os.environ.update(plan["env"])
    sys.stderr = Path(plan["log"]).open("a")  # noqa: SIM115 - the service logs here until exit
    return uvloop.run(_run(route, plan, count, counted))


def instructions(route: str, plan: dict[str, Any], count: int) -> int:
    with tempfile.TemporaryDirectory() as work:
        plan_file = Path(work) / "plan.json"
        plan_file.write_text(json.dumps(plan))
        command = [sys.executable, __file__, route, "--child", str(count), "--plan", str(plan_file)]
        return in_process.callgrind_instructions(command, "--instr-atstart=no")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("route", choices=["create", "read", "list"])
    parser.add_argument("--baseline", action="store_true", help="the baseline app instead")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    parser.add_argument("--cpu", type=int, help="time this many requests instead")
    parser.add_argument("--profile", help="profile --cpu's requests, sorted by this")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.route, json.loads(Path(args.plan).read_text()), args.child, counted=True)
        return
    work = Path(tempfile.mkdtemp(prefix="onramp-instructions-"))
    with fresh_database() as url, server(STRIPE_COMMAND, {}, work / "stripe-sim.log") as stripe:
        owned = reads.seed(url)
        wallet, ids = next(iter(owned.items()))
        plan = {
            "env": {
                **service_env(url, stripe.url),
                **baseline_env(url, stripe.url),
                "DELIVERY_WORKER": "false",
            },
            "baseline": args.baseline,
            "concurrency": args.concurrency,
            "wallet": wallet,
            "token": wallet_token(wallet),
            "ids": ids,
            "log": str(work / "service.log"),
            "run": time.time_ns(),
            "profile": args.profile,
        }
        if args.cpu:
            seconds = child(args.route, plan, args.cpu)
            print(f"{args.route}: {seconds / args.cpu * 1e6:,.0f} µs of CPU a request")
            return
        measured = max(MEASURED, 4 * args.concurrency)
        counted = instructions(args.route, plan, measured)
    each = counted / measured
    print(f"{args.route}: {each:,.0f} instructions a request ({counted:,} for {measured})")


if __name__ == "__main__":
    main()
