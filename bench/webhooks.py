"""Webhook ingestion: the service against the irreducible baseline, in one run.

Both run on the same PostgreSQL with uvicorn and one worker; the load generator
(bench/loadgen.py, aiohttp) runs in its own process with 32 concurrent senders. The
sides alternate over several rounds and the medians of the paired ratios are reported,
because run-to-run noise on a 2-core machine is large.

    .venv/bin/python bench/webhooks.py [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import migrations
from service.demo.local_servers import wait_until_healthy
from service.settings import DatabaseSettings

ADMIN_URL = os.environ.get("ONRAMP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "whsec_bench_" + "b" * 24
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def bench_database(sessions: int) -> Iterator[str]:
    name = f"onramp_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
        with (
            psycopg.connect(url) as connection,
            connection.cursor().copy(
                "COPY onramp_sessions (id, wallet_address, stripe_session_id, livemode, status,"
                " source_amount, source_currency, destination_currency, destination_network,"
                " delivery_status, delivery_confirmations, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for i in range(sessions):
                copy.write_row(
                    (
                        f"ors_bench{i:022d}",
                        "0x52908400098527886E0F7030069857D2E4169EE7",
                        f"cos_bench_{i}",
                        False,
                        "initialized",
                        "100.00",
                        "usd",
                        "musd",
                        "mezo",
                        "not_started",
                        0,
                        "now",
                        "now",
                    )
                )
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env, "PORT": str(port)},
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
        base = f"http://127.0.0.1:{port}"
        if not wait_until_healthy(base, process):
            raise RuntimeError(log.read_text())
        try:
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def signed_events(first_session: int, sessions: int, path: Path) -> None:
    """Each session of the slice moves twice, as Stripe reports a real session: every
    event applies (a status step forward), as in the baseline's conditional UPDATE."""
    timestamp = int(time.time())
    with path.open("w") as out:
        for status in ("requires_payment", "fulfillment_processing"):
            for session in range(first_session, first_session + sessions):
                event = {
                    "id": f"evt_{secrets.token_hex(12)}",
                    "object": "event",
                    "type": "crypto.onramp_session_updated",
                    "created": timestamp,
                    "livemode": False,
                    "data": {
                        "object": {
                            "id": f"cos_bench_{session}",
                            "object": "crypto.onramp_session",
                            "status": status,
                            "metadata": {},
                            "transaction_details": {},
                        }
                    },
                }
                body = json.dumps(event)
                mac = hmac.new(SECRET.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
                headers = {
                    "Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}",
                    "Content-Type": "application/json",
                }
                request = {"method": "POST", "path": "/api/v1/webhooks/stripe", "headers": headers}
                out.write(json.dumps({**request, "body": body}) + "\n")


def load(base: str, requests: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadgen.py"),
            base,
            str(requests),
            "--seconds",
            str(seconds),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stats: dict[str, Any] = json.loads(result.stdout)
    bad = {s: n for s, n in stats["statuses"].items() if s != "200"}
    if bad:
        raise RuntimeError(f"non-200 answers during the benchmark: {bad}")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "webhooks.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    # Enough fresh sessions that no side ever runs out of events that apply.
    per_run = int(args.seconds * 1500)
    with bench_database(per_run * 2 * args.rounds) as url:
        env = {
            "DATABASE_URL": url,
            "BASELINE_DATABASE_URL": url,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "MEZO_RPC_URLS": "http://127.0.0.1:9",
            "LOG_FORMAT": "json",
        }
        service_cmd = [str(BIN / "onramp"), "serve", "--workers", "1"]
        baseline_cmd = [
            str(BIN / "uvicorn"),
            "bench.baseline_webhooks:app",
            "--port",
            "0",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        service_port, baseline_port = free_port(), free_port()
        baseline_cmd[baseline_cmd.index("--port") + 1] = str(baseline_port)
        rounds = []
        with (
            server(service_cmd, env, service_port, work / "service.log") as service_url,
            server(
                [*baseline_cmd, "--app-dir", str(ROOT)], env, baseline_port, work / "baseline.log"
            ) as baseline_url,
        ):
            sides = {"service": service_url, "baseline": baseline_url}
            for number in range(args.rounds):
                order = ["service", "baseline"] if number % 2 == 0 else ["baseline", "service"]
                measured = {}
                for side in order:
                    requests = work / f"{side}-{number}.jsonl"
                    first = (number * 2 + order.index(side)) * per_run
                    signed_events(first, per_run, requests)
                    measured[side] = load(sides[side], requests, args.seconds, args.concurrency)
                    stats = measured[side]
                    print(
                        f"round {number + 1} {side}: {stats['throughput']:.0f}/s "
                        f"p50 {stats['p50_ms']:.1f} ms p99 {stats['p99_ms']:.1f} ms",
                        file=sys.stderr,
                    )
                rounds.append(measured)
    ratio = statistics.median(
        r["service"]["throughput"] / r["baseline"]["throughput"] for r in rounds
    )
    p99_ratio = statistics.median(r["service"]["p99_ms"] / r["baseline"]["p99_ms"] for r in rounds)
    summary = {
        "benchmark": "webhook ingestion",
        "machine": f"{os.cpu_count()} cores",
        "concurrency": args.concurrency,
        "seconds_per_side": args.seconds,
        "rounds": rounds,
        "throughput_ratio_median": ratio,
        "p99_ratio_median": p99_ratio,
        "goal": {"throughput_ratio_at_least": 0.6, "p99_ratio_at_most": 2.0},
        "met": ratio >= 0.6 and p99_ratio <= 2.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))

    def med(side: str, key: str) -> float:
        return float(statistics.median(r[side][key] for r in rounds))

    print("| side | throughput (events/s) | p50 (ms) | p99 (ms) |")
    print("|---|---|---|---|")
    for side in ("baseline", "service"):
        throughput, p50, p99 = (med(side, key) for key in ("throughput", "p50_ms", "p99_ms"))
        print(f"| {side} | {throughput:.0f} | {p50:.1f} | {p99:.1f} |")
    print(f"\nthroughput ratio (median of rounds): {ratio:.2f} (goal >= 0.6)")
    print(f"p99 ratio (median of rounds): {p99_ratio:.2f} (goal <= 2.0)")


if __name__ == "__main__":
    main()
