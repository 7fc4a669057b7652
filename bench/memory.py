"""Resident memory of each service worker under load: after 10,000 requests, and over a
soak, sampled every 10 s, to show that it does not grow.

A service of its own (the same command and settings as the throughput benchmarks, on
the same database and Stripe stand-in) takes a mix of the routes a dApp and Stripe use:
creates (fresh Idempotency-Keys), reads of one session, pages of the list, and signed
webhook events (after their first pass, duplicates, as Stripe's redeliveries are). The
RSS of every uvicorn worker is read from /proc (VmRSS) while the load runs.

    .venv/bin/python bench/memory.py [--requests 10000] [--soak-seconds 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import reads, sessions, webhooks
from bench.harness import (
    Phase,
    Server,
    check_statuses,
    finish_plan,
    read_requests,
    rss_mib,
    run_plan,
    server,
    start_plan,
    write_requests,
)
from bench.stack import Stack, running_stack, service_command, service_env

GOAL_MIB = 150.0
SAMPLE_SECONDS = 10.0
# Soaks outlast the webhook signature tolerance (300 s); events are signed once.
WEBHOOK_TOLERANCE = "3600"


def mixed_requests(stack: Stack) -> Path:
    """Creates, reads, pages and webhook events, interleaved in dApp-like proportions."""
    work = stack.work
    creates = read_requests(sessions.create_requests(work, "service"))
    owned = reads.seed(stack.database_url)
    read_one = read_requests(reads.read_one_requests(work, owned, "service"))
    pages = read_requests(reads.list_requests(work, owned, "service"))
    prefix = "cos_bench_memory_"
    webhooks.seed_sessions(stack.database_url, prefix, 500)
    events = read_requests(webhooks.signed_events(prefix, 0, 500, work / "memory-events.jsonl"))
    pattern = ["create", "read", "page", "event", "read", "read", "page", "event", "create", "read"]
    pools = {"create": creates, "read": read_one, "page": pages, "event": events}
    mixed = [pools[kind][n % len(pools[kind])] for n in range(100) for kind in pattern]
    return write_requests(work / "memory-mix.jsonl", mixed)


def sample(running: Server) -> list[float]:
    return [round(rss_mib(pid), 1) for pid in running.worker_pids()]


def measure(stack: Stack, *, requests: int, soak_seconds: float) -> dict[str, Any]:
    """RSS per worker before, after `requests` requests, and over `soak_seconds`."""
    mix = mixed_requests(stack)
    env = {
        **service_env(stack.database_url, _stripe_url(stack)),
        "STRIPE_WEBHOOK_TOLERANCE_SECONDS": WEBHOOK_TOLERANCE,
    }
    expected = {200, 201}
    with server(service_command(stack.workers), env, stack.work / "memory-service.log") as app:
        warm = run_plan([Phase("memory warm-up", app.url, mix, 60, 8, total=200)], stack.work)
        check_statuses(warm[0], expected, "memory warm-up")
        started = sample(app)
        loaded = run_plan([Phase("memory", app.url, mix, 3600, 32, total=requests)], stack.work)
        check_statuses(loaded[0], expected, "memory")
        after = sample(app)
        peak = [round(_peak_mib(pid), 1) for pid in app.worker_pids()]
        soak: list[dict[str, Any]] = []
        soak_stats = None
        if soak_seconds > 0:
            process = start_plan([Phase("soak", app.url, mix, soak_seconds, 32)], stack.work)
            began = time.monotonic()
            for number in range(int(soak_seconds // SAMPLE_SECONDS) + 1):
                time.sleep(max(0.0, began + number * SAMPLE_SECONDS - time.monotonic()))
                elapsed = round(time.monotonic() - began, 1)
                soak.append({"seconds": elapsed, "rss_mib": sample(app)})
            soak_stats = finish_plan(process, soak_seconds + 120)[0]
            check_statuses(soak_stats, expected, "soak")
    growth = _growth(soak)
    worst = max(after)
    return {
        "workers": len(after),
        "requests": requests,
        "rss_mib_after_warm_up": started,
        "rss_mib_after_requests": after,
        "peak_rss_mib": peak,
        "load": loaded[0],
        "soak_seconds": soak_seconds,
        "soak_samples": soak,
        "soak_load": soak_stats,
        "soak_growth_mib": growth,
        "goal": {"rss_mib_at_most": GOAL_MIB, "soak_growth_mib_at_most": 5.0},
        "met": {
            "rss": worst <= GOAL_MIB,
            "no_growth": growth is None or growth <= 5.0,
        },
    }


def _stripe_url(stack: Stack) -> str:
    assert stack.stripe is not None, "the memory benchmark creates sessions"
    return stack.stripe.url


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _growth(samples: list[dict[str, Any]]) -> float | None:
    """How much the largest worker grew from the soak's first third to its last third
    (medians, so one sample caught mid-request does not decide)."""
    if len(samples) < 3:
        return None
    largest: list[float] = [max(s["rss_mib"]) for s in samples]
    third = max(1, len(largest) // 3)
    return round(statistics.median(largest[-third:]) - statistics.median(largest[:third]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    with running_stack(work, args.workers) as stack:
        result = measure(stack, requests=args.requests, soak_seconds=args.soak_seconds)
    print(json.dumps({k: v for k, v in result.items() if k not in ("load", "soak_load")}, indent=2))


if __name__ == "__main__":
    main()
