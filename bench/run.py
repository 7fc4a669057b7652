"""Every benchmark in one run: `bench/run` (or `.venv/bin/python -m bench.run`).

Starts a fresh PostgreSQL database, the Stripe stand-in (zero latency), the service
(`onramp serve`, uvicorn, production's settings) and the baselines (bench/baseline.py, the
same uvicorn and worker count), then measures, each beside its baseline and alternating
the sides over several rounds: session creation, session reads (one and a page), webhook
ingestion and sign-in; then throughput against concurrency for the chart, the Stripe
stand-in alone, the load generator's own ceiling, resident memory per worker after
10,000 requests and over a soak, delivery verification (anvil), and merchant webhooks
(one worker's dispatcher, 10,000 events to a healthy, a failing and a slow receiver). It writes
bench/results/<time>.json, .md and .png, prints the table, and exits non-zero when a
goal is missed.

    bench/run                 # the default: about 7 minutes
    bench/run --quick         # a shorter check that everything works (about 4 minutes)
    bench/run --long          # more rounds and the full 5-minute memory soak
    bench/run --only create,reads --rounds 5 --seconds 10
    bench/run --publish       # also copy the result to bench/latest/ (kept in git)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import delivery, memory, merchant_webhooks, reads, sessions, sign_in, sweep, webhooks
from bench.harness import ROOT, Comparison, Phase, check_statuses, machine, run_plan, write_requests
from bench.report import chart, markdown
from bench.stack import Stack, running_stack

BENCHMARKS = (
    "create",
    "reads",
    "webhooks",
    "sign-in",
    "sweep",
    "memory",
    "delivery",
    "merchant-webhooks",
)
RESULTS = ROOT / "bench" / "results"
LATEST = ROOT / "bench" / "latest"


def load_generator_ceiling(stack: Stack, seconds: float) -> dict[str, Any]:
    """The load generator against the baseline's empty handler: what it can send at most
    on this machine, to show it is not what limits the figures."""
    empty = write_requests(stack.work / "health.jsonl", [{"method": "GET", "path": "/health"}])
    stats = run_plan([Phase("ceiling", stack.baseline.url, empty, seconds, 32)], stack.work)[0]
    check_statuses(stats, {200}, "load generator ceiling")
    return stats


def measure_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every chosen benchmark in turn. One that fails is recorded under `failed` with
    its error and the run goes on, so that one broken part costs only its own figures."""
    chosen = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    unknown = chosen - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    common = {"rounds": args.rounds, "seconds": args.seconds, "concurrency": args.concurrency}
    comparisons: list[Comparison] = []
    result: dict[str, Any] = {"failed": {}}
    started = time.monotonic()

    def step(name: str, measure: Callable[[], None]) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {name}", file=sys.stderr, flush=True)
        try:
            measure()
        except Exception as error:  # the other benchmarks' figures still count
            traceback.print_exc()
            result["failed"][name] = f"{type(error).__name__}: {error}"[:2000]

    def create() -> None:
        created = sessions.measure(stack, **common)
        comparisons.extend(created)
        stand_in = sessions.measure_stand_in(stack, seconds=4, concurrency=args.concurrency)
        service = created[0].median("service", "throughput")
        stand_in["times_service_create"] = stand_in["throughput"] / service
        result["stripe_stand_in"] = stand_in

    def concurrency_sweep() -> None:
        owned = reads.seed(stack.database_url)
        files = {
            "session creation": {
                side: sessions.create_requests(work, side) for side in ("service", "baseline")
            },
            "session read": {
                side: reads.read_one_requests(work, owned, side) for side in ("service", "baseline")
            },
        }
        expected = {"session creation": {201}, "session read": {200}}
        result["sweep"] = sweep.measure(stack, files, expected, seconds=args.sweep_seconds)

    steps: list[tuple[str, str, Callable[[], None]]] = [
        ("create", "session creation and the Stripe stand-in", create),
        ("reads", "session reads", lambda: comparisons.extend(reads.measure(stack, **common))),
        (
            "webhooks",
            "webhook ingestion",
            lambda: comparisons.append(webhooks.measure(stack, **common)),
        ),
        (
            "sign-in",
            "sign-in",
            lambda: comparisons.append(
                sign_in.measure(
                    stack, rounds=args.rounds, count=args.sign_ins, concurrency=args.concurrency
                )
            ),
        ),
        ("sweep", "throughput against concurrency", concurrency_sweep),
        (
            "memory",
            f"memory: {args.memory_requests:,} requests, {args.soak_seconds:.0f} s soak",
            lambda: result.__setitem__(
                "memory",
                memory.measure(
                    stack, requests=args.memory_requests, soak_seconds=args.soak_seconds
                ),
            ),
        ),
    ]
    with running_stack(work, args.workers) as stack:
        step(
            "load generator ceiling",
            lambda: result.__setitem__("load_generator_ceiling", load_generator_ceiling(stack, 3)),
        )
        for key, name, measure in steps:
            if key in chosen:
                step(name, measure)
    if "delivery" in chosen:
        step(
            f"delivery verification: {args.delivery_sessions:,} sessions",
            lambda: result.__setitem__("delivery", delivery.measure(args.delivery_sessions)),
        )
    if "merchant-webhooks" in chosen:
        step(
            f"merchant webhooks: {args.merchant_events:,} events to three endpoints",
            lambda: result.__setitem__(
                "merchant_webhooks",
                merchant_webhooks.measure(
                    args.merchant_events, args.merchant_rounds, work / "merchant-webhooks"
                ),
            ),
        )
    print(f"[{time.monotonic() - started:5.0f} s] done", file=sys.stderr, flush=True)
    result["comparisons"] = [comparison.as_json() for comparison in comparisons]
    return result


def goals_missed(result: dict[str, Any]) -> list[str]:
    missed = [
        f"{c['name']}: {goal}"
        for c in result["comparisons"]
        for goal, met in c["met"].items()
        if not met
    ]
    for name in ("memory", "delivery", "merchant_webhooks"):
        verdicts = result.get(name, {}).get("met", {})
        missed += [f"{name}: {goal}" for goal, met in verdicts.items() if not met]
    missed += [f"{name} failed" for name in result["failed"]]
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--long", action="store_true", help="more rounds, 5-minute soak")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per side")
    parser.add_argument("--rounds", type=int, help="alternating rounds per comparison")
    parser.add_argument("--seconds", type=float, help="seconds per side and round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--publish", action="store_true", help="copy the result to bench/latest/")
    args = parser.parse_args()
    preset = {"rounds": 3, "seconds": 6.0, "sweep": 3.0, "soak": 60.0, "sign_ins": 300}
    # Merchant webhooks: the size is the goal's (10,000 events), rounds as the others'.
    merchant = {"events": 10_000, "rounds": 3}
    if args.quick:
        preset = {"rounds": 2, "seconds": 4.0, "sweep": 2.0, "soak": 20.0, "sign_ins": 150}
        merchant = {"events": 3_000, "rounds": 1}
    if args.long:
        preset = {"rounds": 5, "seconds": 10.0, "sweep": 4.0, "soak": 300.0, "sign_ins": 500}
        merchant = {"events": 10_000, "rounds": 5}
    args.rounds = args.rounds or preset["rounds"]
    args.seconds = args.seconds or preset["seconds"]
    args.sweep_seconds = preset["sweep"]
    args.soak_seconds = preset["soak"]
    args.sign_ins = int(preset["sign_ins"])
    args.memory_requests = 10_000
    args.delivery_sessions = 2000
    args.merchant_events, args.merchant_rounds = merchant["events"], merchant["rounds"]

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    began = time.monotonic()
    result: dict[str, Any] = {
        "started": stamp,
        "machine": machine(),
        "settings": {
            "workers": args.workers,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "mode": "quick" if args.quick else "long" if args.long else "default",
        },
    }
    result |= measure_all(args, work)
    result["duration_seconds"] = time.monotonic() - began
    RESULTS.mkdir(parents=True, exist_ok=True)
    outputs = {
        "json": RESULTS / f"{stamp}.json",
        "md": RESULTS / f"{stamp}.md",
        "png": RESULTS / f"{stamp}.png",
    }
    outputs["json"].write_text(json.dumps(result, indent=2))
    table = markdown(result)
    outputs["md"].write_text(table)
    if "sweep" in result:
        chart(result, outputs["png"])
    if args.publish:
        LATEST.mkdir(exist_ok=True)
        for kind, path in outputs.items():
            if path.exists():
                shutil.copy(path, LATEST / f"result.{kind}")
    shutil.rmtree(work, ignore_errors=True)
    print(table)
    print(f"written: {', '.join(str(p) for p in outputs.values() if p.exists())}")
    missed = goals_missed(result)
    if missed:
        print("goals missed: " + "; ".join(missed))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
